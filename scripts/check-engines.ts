// Pre-flight for the test suite: exits non-zero, naming the command to run, when an engine is down.
import { configSchema } from '../src/config.js';
import { checkEngines } from '../src/cli/engines.js';

// Only the engine URLs matter here; the rest of the environment is the backbone's business.
const urls = Object.fromEntries(['DATABASE_URL', 'REDIS_URL', 'RABBITMQ_URL'].filter((k) => process.env[k]).map((k) => [k, process.env[k]]));
const problems = await checkEngines(configSchema.parse(urls));
if (problems.length > 0) {
  process.stderr.write(`engines not ready:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  process.exit(1);
}
