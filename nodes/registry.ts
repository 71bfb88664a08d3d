/**
 * The operator registry: one line per operator. The checker, `streams ops`,
 * the generated docs and the editor schema all read it; a test checks that
 * every file under `nodes/` is listed here and every entry has its file.
 */
import type { OperatorDefinition } from '../runtime/api.ts';
import type { Registry } from '../graph/operator-spec.ts';
import generate from './events/generate.ts';
import decodeJson from './events/decode-json.ts';
import encodeJson from './events/encode-json.ts';
import map from './events/map.ts';
import filter from './events/filter.ts';
import fileRead from './io/file-read.ts';
import fileWrite from './io/file-write.ts';
import stdout from './io/stdout.ts';
import windowTumbling from './events/window-tumbling.ts';
import windowSliding from './events/window-sliding.ts';
import windowSession from './events/window-session.ts';
import aggregate from './events/aggregate.ts';
import dedupe from './events/dedupe.ts';
import throttle from './events/throttle.ts';
import wsServer from './io/ws-server.ts';
import wsClient from './io/ws-client.ts';
import sseServer from './io/sse-server.ts';
import httpServer from './io/http-server.ts';
import httpRequest from './io/http-request.ts';
import redisStream from './messaging/redis-stream.ts';
import redisWrite from './messaging/redis-write.ts';
import redisSubscribe from './messaging/redis-subscribe.ts';
import pgWrite from './io/pg-write.ts';
import pgQuery from './io/pg-query.ts';
import kafkaConsume from './messaging/kafka-consume.ts';
import kafkaProduce from './messaging/kafka-produce.ts';
import mqttSubscribe from './messaging/mqtt-subscribe.ts';
import mqttPublish from './messaging/mqtt-publish.ts';
import mqttBroker from './messaging/mqtt-broker.ts';
import ingestRtmp from './media/ingest-rtmp.ts';
import demux from './media/demux.ts';
import serveHttp from './media/serve-http.ts';
import serveFiles from './cdn/serve-files.ts';
import segmentHls from './media/segment-hls.ts';
import segmentDash from './media/segment-dash.ts';
import encode from './media/encode.ts';
import ingestSrt from './media/ingest-srt.ts';
import cdnPurge from './cdn/purge.ts';
import cache from './cdn/cache.ts';
import objectsPut from './objects/put.ts';
import objectsGet from './objects/get.ts';
import mediaPack from './media/media-pack.ts';
import mediaUnpack from './media/media-unpack.ts';

export const operators: readonly OperatorDefinition[] = [
  generate,
  fileRead,
  fileWrite,
  stdout,
  decodeJson,
  encodeJson,
  map,
  filter,
  windowTumbling,
  windowSliding,
  windowSession,
  aggregate,
  dedupe,
  throttle,
  wsServer,
  wsClient,
  sseServer,
  httpServer,
  httpRequest,
  redisStream,
  redisWrite,
  redisSubscribe,
  pgWrite,
  pgQuery,
  kafkaConsume,
  kafkaProduce,
  mqttSubscribe,
  mqttPublish,
  mqttBroker,
  ingestRtmp,
  demux,
  serveHttp,
  serveFiles,
  segmentHls,
  segmentDash,
  encode,
  ingestSrt,
  cdnPurge,
  cache,
  objectsPut,
  objectsGet,
  mediaPack,
  mediaUnpack,
];

export const registry: ReadonlyMap<string, OperatorDefinition> & Registry = new Map(operators.map((op) => [op.name, op]));
