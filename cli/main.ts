/**
 * The `streams` command: `validate`, `ops`, `graph`, `run`, `test`.
 * Exit codes: 0 success, 1 an invalid pipeline or a failed run, 2 a usage
 * error or an unreadable file.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, checkAndReport, parseParams, readPipeline } from './pipeline-file.ts';
import { renderGraph, type GraphFormat } from '../graph/render.ts';
import { formatDiagnostic, hasErrors } from '../graph/diagnostics.ts';
import { registry } from '../nodes/registry.ts';
import { renderOperatorTable, operatorDoc } from './ops.ts';
import { runCommand } from './run.ts';
import { parseTestFile, testCommand } from './pipeline-test.ts';

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number> | number;
}

const paramOption = { param: { type: 'string', multiple: true, short: 'p' } } as const;

const commands: Record<string, Command> = {
  validate: {
    summary: 'Check pipeline files; print every problem as FILE:LINE:COL.',
    usage: 'streams validate FILE... [--param NAME=VALUE]',
    options: { ...paramOption },
    run(values, files) {
      if (files.length === 0) throw new UsageError('validate needs at least one pipeline file');
      let invalid = false;
      for (const path of files) {
        const { file, text } = readPipeline(path);
        if (/^streams_test:/m.test(text)) {
          // A pipeline unit test file: check its own shape (its tests run with `streams test`).
          const { diagnostics, tests } = parseTestFile(file, text);
          for (const diagnostic of diagnostics) process.stderr.write(formatDiagnostic(diagnostic) + '\n');
          if (hasErrors(diagnostics)) invalid = true;
          else process.stdout.write(`${file}: ok (a test file with ${tests.length} tests; run them with \`streams test\`)\n`);
          continue;
        }
        const result = checkAndReport(file, text, parseParams(values.param as string[] | undefined));
        if (hasErrors(result.diagnostics)) invalid = true;
        else process.stdout.write(`${file}: ok (${result.graph!.nodes.size} nodes, ${result.graph!.edges.length} edges)\n`);
      }
      return invalid ? 1 : 0;
    },
  },
  ops: {
    summary: 'List the operators, or show one: its doc, ports and settings.',
    usage: 'streams ops [NAME]',
    options: {},
    run(_values, names) {
      const width = process.stdout.columns;
      if (names.length === 0) {
        process.stdout.write(renderOperatorTable(registry, { width }));
        return 0;
      }
      for (const name of names) {
        const found = operatorDoc(name, registry, { width });
        if (!found.found) throw new UsageError(`${found.message} (${found.hint})`);
        process.stdout.write(found.text);
      }
      return 0;
    },
  },
  graph: {
    summary: 'Draw a pipeline as Graphviz DOT or Mermaid.',
    usage: 'streams graph FILE [--format dot|mermaid] [--param NAME=VALUE]',
    options: { format: { type: 'string', short: 'f', default: 'dot' }, ...paramOption },
    run(values, files) {
      if (files.length !== 1) throw new UsageError('graph takes one pipeline file');
      const format = values.format as string;
      if (format !== 'dot' && format !== 'mermaid') throw new UsageError(`unknown format \`${format}\` (use dot or mermaid)`);
      const { file, text } = readPipeline(files[0]);
      const result = checkAndReport(file, text, parseParams(values.param as string[] | undefined));
      if (!result.graph) return 1;
      process.stdout.write(renderGraph(result.graph, format as GraphFormat));
      return 0;
    },
  },
  run: {
    summary: 'Run a pipeline; with --watch, reload it live when the file changes.',
    usage: 'streams run FILE [--watch] [--metrics HOST:PORT] [--log-level LEVEL] [--state FILE] [--on-node-failure stop|continue] [--param NAME=VALUE]',
    options: {
      watch: { type: 'boolean', short: 'w' },
      metrics: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      state: { type: 'string' },
      'drain-timeout': { type: 'string', default: '30s' },
      'on-node-failure': { type: 'string', default: 'stop' },
      ...paramOption,
    },
    run: (values, files) => runCommand(values, files),
  },
  test: {
    summary: 'Run pipeline unit tests written in YAML (records in, records expected out).',
    usage: 'streams test FILE.test.yaml...',
    options: {},
    run(_values, files) {
      if (files.length === 0) throw new UsageError('test needs at least one test file');
      return testCommand(files);
    },
  },
};

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `AMI Streams: typed dataflow pipelines in one YAML file.\n\nUsage: streams COMMAND [options]\n\nCommands:\n${lines.join('\n')}\n\nRun \`streams COMMAND --help\` for a command's options.\n`;
}

function commandHelp(name: string, command: Command): string {
  const options = Object.entries(command.options).map(([option, spec]) => {
    const takes = spec.type === 'string' ? ' VALUE' : '';
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const fallback = spec.default !== undefined ? ` (default ${String(spec.default)})` : '';
    return `  ${short}--${option}${takes}${fallback}`;
  });
  return `${command.summary}\n\nUsage: ${command.usage}\n${options.length ? `\nOptions:\n${options.join('\n')}\n` : ''}`;
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
  const command = commands[name];
  try {
    if (!command) throw new UsageError(`unknown command \`${name}\` (commands: ${Object.keys(commands).join(', ')})`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(commandHelp(name, command));
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError(`${(error as Error).message.replace(/\. To specify.*$/s, '')}\nusage: ${command.usage}`);
    }
    return await command.run(parsed.values as Record<string, unknown>, parsed.positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`streams: ${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}
