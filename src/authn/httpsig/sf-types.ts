/**
 * RFC 8941 Structured Field Values: the data model. Bare items are tagged so that an integer
 * and a decimal, or a string and a token, never collapse into the same JavaScript value.
 */

export type BareItem =
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'decimal'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'token'; readonly value: string }
  | { readonly type: 'binary'; readonly value: Uint8Array }
  | { readonly type: 'boolean'; readonly value: boolean };

/** Parameters keep insertion order; a repeated key overwrites in place (RFC 8941 §4.2.3.2). */
export type Parameters = Map<string, BareItem>;

export interface Item {
  readonly kind: 'item';
  readonly value: BareItem;
  readonly params: Parameters;
}

export interface InnerList {
  readonly kind: 'inner-list';
  readonly items: Item[];
  readonly params: Parameters;
}

export type ListMember = Item | InnerList;
export type List = ListMember[];
/** Dictionary members keep first-seen order; a repeated key overwrites in place (RFC 8941 §4.2.2). */
export type Dictionary = Map<string, ListMember>;

/** Thrown by the parser and serializer; callers in the authn layer translate it into AuthnError. */
export class SfError extends Error {
  override readonly name = 'SfError';
}

// Constructors, so call sites read as the value they build.
export const sfInteger = (value: number): BareItem => ({ type: 'integer', value });
export const sfDecimal = (value: number): BareItem => ({ type: 'decimal', value });
export const sfString = (value: string): BareItem => ({ type: 'string', value });
export const sfToken = (value: string): BareItem => ({ type: 'token', value });
export const sfBinary = (value: Uint8Array): BareItem => ({ type: 'binary', value });
export const sfBoolean = (value: boolean): BareItem => ({ type: 'boolean', value });

export const item = (value: BareItem, params: Parameters = new Map()): Item => ({ kind: 'item', value, params });
export const innerList = (items: Item[], params: Parameters = new Map()): InnerList => ({
  kind: 'inner-list',
  items,
  params,
});
