/** Every SDS secret reference in an Envoy config document: the secret's name and its `sds_config`. */
export function sdsReferences(doc: unknown): { name: string; sdsConfig: unknown }[] {
  const out: { name: string; sdsConfig: unknown }[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if ('sds_config' in o) out.push({ name: String(o.name), sdsConfig: o.sds_config });
      Object.values(o).forEach(walk);
    }
  };
  walk(doc);
  return out;
}
