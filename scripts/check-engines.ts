// Pre-flight for the test suite: exits non-zero, naming the command to run, when an engine is down.
import { configSchema } from '../src/config.js';
import { checkEngines } from '../src/cli/engines.js';

const problems = await checkEngines(configSchema.parse({}));
if (problems.length > 0) {
  process.stderr.write(`engines not ready:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  process.exit(1);
}
