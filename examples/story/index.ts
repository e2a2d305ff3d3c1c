export * from './clouds.js';
export * from './data.js';
export * from './world.js';
