import type { IncomingMessage, ServerResponse } from 'node:http';
import { realpath } from 'node:fs/promises';
import { Observable } from 'rxjs';
import { checkInputFolder, defineOperator, reasonOf, size, z, type Batch } from '../../runtime/api.ts';
import { ServerRun } from '../io/web/server-run.ts';
import { createWebServer } from '../../native/http/server.ts';
import { checkTlsPaths, listenSetting, tlsFiles, tlsSetting } from '../io/web/settings.ts';
import { sendError } from '../media/origin/respond.ts';
import { findFile, relativeRequestPath } from './files/file-path.ts';
import { cacheControlOf, contentTypeOf, tagsOf } from './files/file-rules.ts';
import { sendFile } from './files/send-file.ts';

/** How long a client may take to send its request headers, and the whole request, ms. */
const headersTimeout = 10_000;
const requestTimeout = 30_000;

const patternSetting = z
  .string()
  .min(1)
  .refine((pattern) => !pattern.split('/').includes('..'), 'must not contain `..`')
  .meta({ description: 'A glob over the path below `path_prefix` (`*`, `?`, `**` across folders); without a `/` it matches the file name in any folder.', examples: ['*.m3u8', 'videos/**'] });

export default defineOperator({
  name: 'serve.files',
  summary: 'An HTTP origin for a folder: validators, ranges, cache lifetimes and cache tags by rule.',
  doc: 'Serves the files under `root` at `{path_prefix}/{path}` with `GET` and `HEAD` (other methods get 405), as an origin for edge caches (`cache`): each answer has `Content-Type` by extension, `Cache-Control` from the first `cache_control` rule whose pattern matches (else `default_cache_control`), the tags of every matching `tags` rule in `Surrogate-Key` (what a purge by tag names), a strong `ETag` from the size and modification time and `Last-Modified`, so conditional requests get 304; single byte ranges get 206 (416 when unsatisfiable). Bodies stream from disk, so a file of any size is served in constant memory; `max_rate` paces each body (to try an edge against a slow origin). A path that could leave the folder is refused with 400 before the file system is asked: `.` or `..` segments, encoded slashes or backslashes (`%2f`, `%5c`), NUL or other control characters, a `%` left after decoding (double encoding), paths over 4 KiB; a symbolic link that leads out of `root` is 404. Folders are not listed (404). `GET /healthz` answers `ok`. With `tls`, HTTPS from a certificate and key file, renewed files taken without a restart.',
  inputs: {},
  outputs: {},
  settings: z.object({
    listen: listenSetting(8081),
    tls: tlsSetting(),
    root: z.string().min(1).meta({ description: 'The folder served; relative to the pipeline file\'s folder.', examples: ['./public', '/var/www/media'] }),
    path_prefix: z
      .string()
      .regex(/^\/[A-Za-z0-9_.\/-]*$/, 'must be a URL path such as `/` or `/media`')
      .default('/')
      .meta({ description: 'The URL path the folder is served under.', examples: ['/', '/media'] }),
    default_cache_control: z.string().min(1).default('public, max-age=60').meta({ description: 'The `Cache-Control` of files no rule matches.', examples: ['public, max-age=300'] }),
    cache_control: z
      .array(z.object({ match: patternSetting, cache_control: z.string().min(1) }).strict())
      .default([
        { match: '*.m3u8', cache_control: 'public, max-age=1' },
        { match: '*.mpd', cache_control: 'public, max-age=1' },
        { match: '*.{m4s,ts,mp4,m4a,aac}', cache_control: 'public, max-age=86400' },
      ])
      .meta({ description: 'Cache lifetimes by pattern, the first match wins. The default gives playlists and manifests 1 s and media a day.', examples: [[{ match: '*.m3u8', cache_control: 'public, max-age=2' }]] }),
    tags: z
      .array(z.object({ match: patternSetting, tags: z.array(z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'must be letters, digits, `_`, `.`, `:` or `-`')).min(1) }).strict())
      .default([])
      .meta({ description: 'Cache tags by pattern, sent as `Surrogate-Key` (every matching rule adds its tags): edges purge by tag.', examples: [[{ match: 'news/**', tags: ['news'] }]] }),
    max_rate: size().optional().meta({ description: 'Paces each response body to this many bytes per second (a slow origin, for trying an edge); unset, bodies go as fast as the client reads.', examples: ['1MiB'] }),
    max_connections: z.number().int().min(1).default(10_000).meta({ description: 'Open connections the server accepts; past it new ones are closed at once.', examples: [10000] }),
  }),
  requires: ['listen'],
  example: { listen: '127.0.0.1:8081', root: './public' },
  checkPaths(settings, resolvePath) {
    const problem = checkInputFolder('root', resolvePath(settings.root));
    return [...(problem ? [problem] : []), ...checkTlsPaths(settings.tls, resolvePath)];
  },
  create(ctx) {
    const settings = ctx.settings;
    const root = ctx.resolvePath(settings.root);
    const prefix = settings.path_prefix;
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => ctx.schedule(ms, resolve));
    const pace = settings.max_rate ? { bytesPerSecond: settings.max_rate, sleep, now: () => ctx.now() } : undefined;

    return function serveFilesNode() {
      return new Observable<Batch>((subscriber) => {
        const open = new Set<ServerResponse>();
        let realRoot: string | undefined;

        async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
          if (run.stopping) return sendError(response, 503, 'stopping', { Connection: 'close' });
          const url = request.url ?? '/';
          const path = url.split('?', 1)[0];
          if (path === '/healthz') return sendError(response, 200, 'ok');
          if (request.method !== 'GET' && request.method !== 'HEAD') return sendError(response, 405, 'method not allowed', { Allow: 'GET, HEAD' });
          const relative = relativeRequestPath(path, prefix);
          if (typeof relative !== 'string') return sendError(response, relative.status, relative.reason);
          const file = await findFile(realRoot!, relative);
          if (!file) return sendError(response, 404, 'not found');
          const tags = tagsOf(relative, settings.tags);
          const headers = {
            'Content-Type': contentTypeOf(relative),
            'Cache-Control': cacheControlOf(relative, settings.cache_control, settings.default_cache_control),
            ...(tags.length > 0 ? { 'Surrogate-Key': tags.join(' ') } : {}),
          };
          open.add(response);
          try {
            ctx.metrics.bytes(await sendFile(request, response, file, headers, pace));
          } finally {
            open.delete(response);
          }
        }

        const server = createWebServer({ owner: ctx, tls: tlsFiles(settings.tls, ctx.resolvePath) }, function onFileRequest(request, response) {
          handle(request, response).catch((error: unknown) => {
            ctx.log.error({ error: reasonOf(error) }, 'request failed');
            if (response.headersSent) response.destroy();
            else sendError(response, 500, 'internal error');
          });
        });
        server.maxConnections = settings.max_connections;
        server.headersTimeout = headersTimeout;
        server.requestTimeout = requestTimeout;
        const run = new ServerRun(ctx, server, subscriber, { listen: settings.listen, path: [prefix] }, {
          serving: `serving ${root}`,
          async prepare() {
            realRoot = await realpath(root).catch((error: NodeJS.ErrnoException) => {
              throw new Error(`cannot serve \`root\` ${root}: ${error.code === 'ENOENT' ? 'no such folder' : reasonOf(error)}`);
            });
          },
          closeClients: () => undefined,
          dropClients: () => {
            for (const response of open) response.destroy();
          },
        });
        return function serveFilesTeardown() {
          run.teardown();
        };
      });
    };
  },
});
