/**
 * The story's data, generated: the shop's MySQL database (customers and orders, with utf8mb4, JSON,
 * decimals and a foreign key) and the sessions and carts in Redis, with TTLs.
 */
import type { DataEndpoint } from '@armada/core';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';

export async function seedShop(endpoint: DataEndpoint, options: { customers?: number; ordersPerCustomer?: number } = {}): Promise<number> {
  const customers = options.customers ?? 2_000;
  const perCustomer = options.ordersPerCustomer ?? 5;
  const connection = await createConnection({ host: endpoint.host, port: endpoint.port, user: endpoint.user ?? 'root', password: endpoint.password ?? '', multipleStatements: true });
  try {
    await connection.query(`
      CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
      USE shop;
      CREATE TABLE IF NOT EXISTS customers (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL, UNIQUE KEY (email));
      CREATE TABLE IF NOT EXISTS orders (
        id BIGINT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(12, 2) NOT NULL, placed_at DATETIME NOT NULL, items JSON,
        KEY (customer_id), CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
      );`);
    const names = ['Ada', 'Grace', 'Linus', 'Zoë', 'Renée', '李雷', 'Ōta', 'Δήμητρα'];
    for (let start = 0; start < customers; start += 1000) {
      const batch = Array.from({ length: Math.min(1000, customers - start) }, (_, offset) => {
        const id = start + offset + 1;
        return [id, `${names[id % names.length]} ${id} 🛒`, `customer${id}@example.com`];
      });
      await connection.query('INSERT INTO shop.customers (id, name, email) VALUES ?', [batch]);
      const orders = batch.flatMap(([id]) =>
        Array.from({ length: perCustomer }, (_, index) => [
          Number(id) * 100 + index,
          id,
          ((Number(id) * 37 + index * 11) % 100_000) / 100,
          new Date(Date.UTC(2013, 0, 1) + (Number(id) * 60 + index) * 60_000).toISOString().slice(0, 19).replace('T', ' '),
          JSON.stringify({ sku: `SKU-${index}`, quantity: index + 1 }),
        ]),
      );
      await connection.query('INSERT INTO shop.orders (id, customer_id, total, placed_at, items) VALUES ?', [orders]);
    }
    return customers * (1 + perCustomer);
  } finally {
    await connection.end();
  }
}

export async function seedSessions(endpoint: DataEndpoint, options: { sessions?: number } = {}): Promise<number> {
  const sessions = options.sessions ?? 5_000;
  const redis = new Redis({ host: endpoint.host, port: endpoint.port, ...(endpoint.password ? { password: endpoint.password } : {}), lazyConnect: true });
  await redis.connect();
  try {
    const pipeline = redis.pipeline();
    for (let index = 0; index < sessions; index++) {
      pipeline.set(`session:${index}`, JSON.stringify({ user: index % 997, cart: index % 7 }), 'EX', 86_400);
      if (index % 5 === 0) pipeline.hset(`cart:${index}`, { items: String(index % 9), currency: 'EUR' });
    }
    pipeline.zadd('leaderboard', ...Array.from({ length: 100 }, (_, index) => [index * 3, `player-${index}`]).flat());
    await pipeline.exec();
    // The mover snapshots Redis as a replica would; by default a source waits 5 s for more replicas
    // to share the snapshot. This one has no others: start at once, as an operator would set it.
    await redis.config('SET', 'repl-diskless-sync-delay', '0');
    return Number(await redis.dbsize());
  } finally {
    redis.disconnect();
  }
}
