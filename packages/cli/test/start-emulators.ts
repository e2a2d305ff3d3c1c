/**
 * Starts the testkit's AWS and DigitalOcean emulators on 127.0.0.1 for trying the command by hand,
 * and prints the variables that point `armada` at them. Not a test: run it with
 *   pnpm exec tsx --conditions=source packages/cli/test/start-emulators.ts
 * and stop it with Ctrl-C (the emulators keep what was made only while this runs).
 */
import { startAwsEmulator, startDigitalOceanEmulator } from '@armada/testkit';

const aws = await startAwsEmulator({ bootMs: 500 });
const digitalocean = await startDigitalOceanEmulator({ bootMs: 500 });
process.stdout.write(
  [
    '# AWS (EC2 and Route 53) and DigitalOcean emulators are up. In another shell:',
    `export AWS_ENDPOINT_URL=${aws.endpoint} AWS_ACCESS_KEY_ID=emulator AWS_SECRET_ACCESS_KEY=emulator`,
    `export DIGITALOCEAN_API_URL=${digitalocean.endpoint} DIGITALOCEAN_TOKEN=emulator`,
    '# Ctrl-C here stops them.',
    '',
  ].join('\n'),
);
const stop = async () => {
  await Promise.all([aws.close(), digitalocean.close()]);
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
