/**
 * The `streams` command: `validate`, `ops`, `graph`, `plan`, `run`, `tap`, `top`, `sign`, `purge`, `worker`, `deploy`, `test`.
 * Exit codes: 0 success, 1 an invalid pipeline or a failed run, 2 a usage
 * error or an unreadable file.
 *
 * This file loads nothing but Node's own modules: each command's code is
 * imported when that command runs, so `--help` starts as fast as Node and
 * `validate` never loads the runtime or a connector's client library.
 */
import { parseArgs, type ParseArgsOptionDescriptor } from 'node:util';
import { loadEnvFiles } from './env-file.ts';
import { UsageError } from './usage-error.ts';

/** A command-line option: what `parseArgs` reads, and what `--help` says about it. */
interface OptionSpec extends ParseArgsOptionDescriptor {
  /** What the option does, one line for `--help`. */
  description: string;
  /** The placeholder `--help` shows for the option's value (default `VALUE`). */
  value?: string;
}

interface Command {
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number> | number;
}

const paramOption: Record<string, OptionSpec> = {
  param: {
    type: 'string',
    multiple: true,
    short: 'p',
    value: 'NAME=VALUE',
    description: 'set `${params.NAME}` (overrides the file\'s `params:` default; numbers and true/false are typed); repeatable',
  },
};

const envFileOption: Record<string, OptionSpec> = {
  'env-file': {
    type: 'string',
    multiple: true,
    value: 'FILE',
    description: 'read variables for `${env:NAME}` from a dotenv file (KEY=VALUE lines, # comments, quotes); variables already set in the environment win; repeatable',
  },
};

/** OpenTelemetry traces (docs/tracing.md), for the commands that run a graph. */
const tracingOptions: Record<string, OptionSpec> = {
  otlp: { type: 'string', value: 'URL', description: 'export traces over OTLP/HTTP to this collector, such as http://127.0.0.1:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT; off when neither is set)' },
  'trace-ratio': { type: 'string', default: '0.01', value: 'R', description: 'the share of source batches traced, 0 to 1 (a batch is traced whole, with everything it becomes downstream and on other hosts)' },
};

/** The token of a running graph's admin API, for the commands that call it. */
const tokenOption: Record<string, OptionSpec> = {
  token: { type: 'string', value: 'TOKEN', description: 'the run\'s --ui-token (default: $STREAMS_UI_TOKEN)' },
};

/** `--ui` and its token and TLS files; `what` says what the page shows. */
function uiOption(what: string): Record<string, OptionSpec> {
  return {
    ui: { type: 'string', value: 'HOST:PORT', description: what },
    'ui-token': { type: 'string', value: 'TOKEN', description: 'the bearer token the --ui API and page need (default: $STREAMS_UI_TOKEN); required unless --ui listens on loopback' },
    'ui-tls-cert': { type: 'string', value: 'FILE', description: 'serve --ui over HTTPS with this PEM certificate (full chain), reloaded when the file changes; needs --ui-tls-key' },
    'ui-tls-key': { type: 'string', value: 'FILE', description: 'the PEM private key of --ui-tls-cert' },
  };
}

const commands: Record<string, Command> = {
  validate: {
    summary: 'Check pipeline files; print every problem as FILE:LINE:COL.',
    usage: 'streams validate FILE... [--param NAME=VALUE] [--env-file FILE]',
    options: { ...paramOption, ...envFileOption },
    run: async (values, files) => (await import('./validate.ts')).validateCommand(values, files),
  },
  ops: {
    summary: 'List the operators, or show one: its doc, ports and settings.',
    usage: 'streams ops [NAME]',
    options: {},
    run: async (_values, names) => (await import('./ops.ts')).opsCommand(names),
  },
  graph: {
    summary: 'Draw a pipeline as Graphviz DOT, Mermaid, or a standalone SVG laid out as the visualiser does.',
    usage: 'streams graph FILE [--format dot|mermaid|svg] [--param NAME=VALUE] [--env-file FILE]',
    options: {
      format: { type: 'string', short: 'f', default: 'dot', value: 'dot|mermaid|svg', description: 'the output language; svg is a drawing to open in a browser or put in docs' },
      ...paramOption,
      ...envFileOption,
    },
    run: async (values, files) => (await import('./validate.ts')).graphCommand(values, files),
  },
  plan: {
    summary: 'Show which host runs each node and what the edges between hosts run through (Kafka, object storage).',
    usage: 'streams plan FILE [--hosts FILE] [--format table|json|dot|svg] [--ui HOST:PORT [--ui-token TOKEN]] [--param NAME=VALUE] [--env-file FILE]',
    options: {
      hosts: { type: 'string', value: 'FILE', description: 'a hosts file (`hosts:` and `transports:`) replacing the pipeline\'s own (default: config/hosts.yaml when the pipeline has no `hosts:`)' },
      format: { type: 'string', short: 'f', default: 'table', value: 'table|json|dot|svg', description: 'the output: a table, the plan as JSON, Graphviz DOT or SVG with a box per host' },
      ...uiOption('instead of printing the plan, serve it in the visualiser at http://HOST:PORT/ (a box per host, nothing running) until stopped'),
      ...paramOption,
      ...envFileOption,
    },
    run: async (values, files) => (await import('./plan.ts')).planCommand(values, files),
  },
  tap: {
    summary: 'Print the records passing through a node of a running graph (its --ui) as JSON lines.',
    usage: 'streams tap URL NODE[.PORT] [--token TOKEN] [--limit N]',
    options: {
      ...tokenOption,
      limit: { type: 'string', value: 'N', description: 'stop after N records' },
    },
    run: async (values, args) => (await import('./tap-top.ts')).tapCommand(values, args),
  },
  top: {
    summary: 'A refreshing table of a running graph\'s nodes: rates, queue fill, drops, errors.',
    usage: 'streams top URL [--token TOKEN] [--once]',
    options: {
      ...tokenOption,
      once: { type: 'boolean', description: 'print the table once and exit' },
    },
    run: async (values, args) => (await import('./tap-top.ts')).topCommand(values, args),
  },
  run: {
    summary: 'Run a pipeline; with --watch, reload it live when the file changes.',
    usage: 'streams run FILE [--watch] [--metrics HOST:PORT] [--ui HOST:PORT [--ui-token TOKEN] [--ui-tls-cert FILE --ui-tls-key FILE]] [--log-level LEVEL] [--state FILE] [--on-node-failure stop|continue] [--otlp URL [--trace-ratio R]] [--param NAME=VALUE] [--env-file FILE]',
    options: {
      watch: { type: 'boolean', short: 'w', description: 'reload the pipeline when its file changes; an invalid change is rejected and the running graph kept' },
      metrics: { type: 'string', value: 'HOST:PORT', description: 'serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone listens on 127.0.0.1)' },
      ...uiOption('serve the live graph visualiser and the admin API (graph, stats, taps, reload) at http://HOST:PORT/ (PORT alone listens on 127.0.0.1)'),
      'log-level': { type: 'string', default: 'info', value: 'LEVEL', description: 'the least severe JSON log lines printed to stderr: debug, info, warn, error or silent' },
      state: { type: 'string', value: 'FILE|URL', description: 'keep window and aggregate state across runs: a file, or a redis:// or postgres:// URL' },
      'drain-timeout': { type: 'string', default: '30s', value: 'DURATION', description: 'on SIGINT/SIGTERM, how long records in flight may take to reach their sinks before the run stops' },
      'on-node-failure': { type: 'string', default: 'stop', value: 'stop|continue', description: 'when a node fails permanently in a long-running run: stop drains the graph and exits 1; continue keeps the other nodes running (exit 1 at the end)' },
      ...tracingOptions,
      ...paramOption,
      ...envFileOption,
    },
    run: async (values, files) => (await import('./run.ts')).runCommand(values, files),
  },
  sign: {
    summary: 'Print a signed URL for a path the CDN edge protects (key from $CDN_SIGN_KEY).',
    usage: 'streams sign PATH --expires DURATION [--base URL] [--env-file FILE]',
    options: {
      expires: { type: 'string', value: 'DURATION', description: 'how long the link is valid: `30m`, `1h`, `7d`' },
      base: { type: 'string', value: 'URL', description: 'print a full URL on this edge, such as `http://127.0.0.1:8081`, instead of the path alone' },
      ...envFileOption,
    },
    run: async (values, args) => (await import('./sign.ts')).signCommand(values, args),
  },
  worker: {
    summary: 'Run this host\'s share of a deployed pipeline; apply each new version as a hot reload and report it.',
    usage: 'streams worker --host NAME --control redis://HOST:PORT|kafka://BROKER[,BROKER] --name PIPELINE [--state URL] [--ui HOST:PORT [--ui-token TOKEN]] [--log-level info] [--drain-timeout 30s] [--otlp URL [--trace-ratio R]]',
    options: {
      host: { type: 'string', value: 'NAME', description: 'this host\'s name in the plan (a key of `hosts:`)' },
      control: { type: 'string', value: 'URL', description: 'the control plane: redis://HOST:PORT or kafka://BROKER[,BROKER]' },
      name: { type: 'string', value: 'PIPELINE', description: 'the `name` of the pipeline whose deployments to run' },
      state: { type: 'string', value: 'URL', description: 'the state store the workers share (redis:// or postgres://, a file for one machine): keyed nodes with `parallelism` keep their state per partition there, so it moves with the partition' },
      'log-level': { type: 'string', default: 'info', value: 'LEVEL', description: 'debug, info, warn, error or silent (logs go to stderr as JSON lines)' },
      'drain-timeout': { type: 'string', default: '30s', value: 'DURATION', description: 'how long a drain (signal, replaced node) may take before nodes are forced' },
      ...tracingOptions,
      ...uiOption('serve the visualiser of the whole deployed plan at http://HOST:PORT/, this host\'s nodes live and the others greyed, from the first version read'),
      ...envFileOption,
    },
    run: async (values, args) => (await import('./worker.ts')).workerCommand(values, args),
  },
  deploy: {
    summary: 'Check, plan and publish a pipeline to its workers; wait until every host has applied it.',
    usage: 'streams deploy FILE --control redis://HOST:PORT|kafka://BROKER[,BROKER] [--hosts FILE] [--param NAME=VALUE] [--timeout 30s]',
    options: {
      control: { type: 'string', value: 'URL', description: 'the control plane: redis://HOST:PORT or kafka://BROKER[,BROKER]' },
      hosts: { type: 'string', value: 'FILE', description: 'a hosts file (`hosts:` and `transports:`) replacing the pipeline\'s own (default: config/hosts.yaml when the pipeline has no `hosts:`)' },
      timeout: { type: 'string', default: '30s', value: 'DURATION', description: 'how long to wait for every host to apply the new version' },
      ...paramOption,
      ...envFileOption,
    },
    run: async (values, files) => (await import('./deploy.ts')).deployCommand(values, files),
  },
  purge: {
    summary: 'Drop a URL, prefix or tag from every edge cache on a purge channel; name the edges that did not apply it.',
    usage: 'streams purge (--redis URL | --kafka BROKERS) [--channel NAME] (URL | --url U | --prefix P | --tag T) [--soft] [--timeout 5s]',
    options: {
      redis: { type: 'string', value: 'URL', description: 'the purge bus is Redis pub/sub at URL (redis://HOST:PORT)' },
      kafka: { type: 'string', value: 'BROKERS', description: 'the purge bus is Kafka at BROKERS (HOST:PORT,...)' },
      channel: { type: 'string', default: 'streams:cdn:purge', value: 'NAME', description: 'the purge channel (on Kafka, the topic with `:` as `.`)' },
      url: { type: 'string', value: 'URL', description: 'purge this URL (path and query) on every edge' },
      prefix: { type: 'string', value: 'PREFIX', description: 'purge every URL starting with PREFIX' },
      tag: { type: 'string', value: 'TAG', description: 'purge every object tagged TAG (the origin\'s Surrogate-Key / Cache-Tag)' },
      soft: { type: 'boolean', description: 'mark stale instead of removing: the next request revalidates with the origin' },
      timeout: { type: 'string', default: '5s', value: 'DURATION', description: 'how long to wait for the edges\' acknowledgements' },
    },
    run: async (values, args) => (await import('./purge.ts')).purgeCommand(values, args),
  },
  test: {
    summary: 'Run pipeline unit tests written in YAML (records in, records expected out).',
    usage: 'streams test FILE.test.yaml... [--env-file FILE]',
    options: { ...envFileOption },
    async run(_values, files) {
      if (files.length === 0) throw new UsageError('test needs at least one test file');
      return (await import('./pipeline-test.ts')).testCommand(files);
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `AMI Streams: typed dataflow pipelines in one YAML file.\n\nUsage: streams COMMAND [options]\n\nCommands:\n${lines.join('\n')}\n\nRun \`streams COMMAND --help\` for a command's options.\n`;
}

/** A command's usage and each option with what it does, aligned in two columns. */
function commandHelp(command: Command): string {
  const rows = Object.entries(command.options).map(([option, spec]) => {
    const takes = spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : '';
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const fallback = spec.default !== undefined ? ` (default ${String(spec.default)})` : '';
    return { left: `  ${short}--${option}${takes}`, right: `${spec.description}${fallback}` };
  });
  rows.push({ left: '  -h, --help', right: 'show this help' });
  const width = Math.max(...rows.map((row) => row.left.length));
  const options = rows.map((row) => `${row.left.padEnd(width)}  ${row.right}`);
  return `${command.summary}\n\nUsage: ${command.usage}\n\nOptions:\n${options.join('\n')}\n`;
}

/** What `parseArgs` accepts: the option specs without their help text. */
function parseOptions(options: Record<string, OptionSpec>): Record<string, ParseArgsOptionDescriptor> {
  return Object.fromEntries(Object.entries(options).map(([name, { description: _d, value: _v, ...spec }]) => [name, spec]));
}

/** Runs the CLI with the given arguments; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write('0.1.0\n');
    return 0;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  try {
    if (!command) throw new UsageError(`unknown command \`${name}\` (commands: ${Object.keys(commands).join(', ')})`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: parseOptions(command.options), allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError(`${(error as Error).message.replace(/\. To specify.*$/s, '')}\nusage: ${command.usage}`);
    }
    const values = parsed.values as Record<string, unknown>;
    if (values['env-file']) loadEnvFiles(values['env-file'] as string[]);
    return await command.run(values, parsed.positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`streams: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}
