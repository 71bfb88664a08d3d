/**
 * What every drawing of a graph shares, the visualiser's page and the
 * CLI's SVG alike: ELK's layered layout, left to right, and a colour per
 * host. Plain data, no ELK import, so the page's bundle and Node both read it.
 */

/** ELK options for a pipeline drawn left to right with orthogonal edges and their labels beside them. */
export const layeredLayoutOptions: Readonly<Record<string, string>> = {
  'elk.algorithm': 'layered',
  'elk.direction': 'RIGHT',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.layered.spacing.nodeNodeBetweenLayers': '60',
  'elk.spacing.nodeNode': '36',
  'elk.spacing.edgeLabel': '4',
  'elk.edgeLabels.inline': 'false',
};

/** A stable colour per host name. */
export function hostColour(host: string): string {
  let hash = 0;
  for (const char of host) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return `hsl(${Math.abs(hash) % 360} 60% 55%)`;
}
