/** URL redaction lives in `native/`, where the clients that log URLs are; operators reach it through `runtime/api`. */
export { redactUrl } from '../native/redact-url.ts';
