/**
 * The settings every MQTT client node (`mqtt.subscribe`, `mqtt.publish`)
 * shares; the connection behind them is `native/mqtt/connection.ts`, which
 * takes the parsed settings as they are.
 */
import { duration, z } from '../../../runtime/api.ts';

/** The `url` setting of the MQTT client nodes. */
export const urlSetting = z
  .string()
  .regex(/^(mqtts?|wss?|tcp|ssl):\/\/[^\s/]+/, { error: 'expected a broker URL such as `mqtt://127.0.0.1:1883` (`mqtts://` for TLS, `ws://` or `wss://` for WebSocket)' })
  .meta({
    description: 'The broker: `mqtt://host:port`, `mqtts://host:port` for TLS, `ws://` or `wss://` for MQTT over WebSocket. Logs show it with any password replaced by `***`; prefer the `password` setting.',
    examples: ['mqtt://127.0.0.1:1883', 'mqtts://broker.example.com:8883'],
  });

/** The other settings every MQTT client node has, spread into its schema after its own. */
export const connectionSettings = {
  protocol_version: z
    .union([z.literal(4), z.literal(5)])
    .default(4)
    .meta({ description: 'MQTT protocol: `4` for MQTT 3.1.1, `5` for MQTT 5.', examples: [5] }),
  client_id: z
    .string()
    .min(1)
    .max(256)
    .optional()
    .meta({ description: 'The client identifier; a fixed one is needed for a persistent session (`clean: false`). Absent: `streams-NODE-RANDOM`.', examples: ['ingest-sensors-1'] }),
  clean: z
    .boolean()
    .default(true)
    .meta({ description: 'Start a clean session. With `false` (and a fixed `client_id`) the broker keeps the subscriptions and the QoS 1/2 messages not yet acknowledged while the node is away, and delivers them when it is back.' }),
  session_expiry: duration()
    .prefault('1h')
    .meta({ description: 'MQTT 5 with `clean: false`: how long the broker keeps the session after a disconnect.', examples: ['1d'] }),
  username: z.string().optional().meta({ description: 'User name for the broker.', examples: ['${env:MQTT_USER}'] }),
  password: z.string().optional().meta({ description: 'Password for the broker; give it as `${env:NAME}`, never in the file. Never logged.', examples: ['${env:MQTT_PASSWORD}'] }),
  ca: z.string().min(1).optional().meta({ description: 'TLS: a PEM file of the certificate authorities to trust instead of the system ones.', examples: ['certs/ca.pem'] }),
  cert: z.string().min(1).optional().meta({ description: 'TLS: a PEM client certificate file, for brokers that authenticate clients by certificate.', examples: ['certs/client.pem'] }),
  key: z.string().min(1).optional().meta({ description: 'TLS: the PEM private key file of `cert`.', examples: ['certs/client.key'] }),
  keepalive: duration().prefault('60s').meta({ description: 'Keep-alive interval: a ping is sent when the connection is idle this long, and a connection silent for 1.5 times as long is dropped and reconnected.', examples: ['30s'] }),
  connect_timeout: duration().prefault('10s').meta({ description: 'How long to wait for the broker to accept a connection before trying again.', examples: ['5s'] }),
  reconnect_max: duration().prefault('10s').meta({ description: 'The longest wait between connection attempts; waits double from 100 ms up to this.', examples: ['30s'] }),
};

/** Adds the cross-field rules of the connection settings to a node's schema. */
export function checkConnection(settings: { clean: boolean; client_id?: string }, ctx: z.RefinementCtx): void {
  if (!settings.clean && settings.client_id === undefined) {
    ctx.addIssue({ code: 'custom', path: ['clean'], message: '`clean: false` keeps a session on the broker, which is found again by its client id: set `client_id`' });
  }
}
