// The values of the XenAPI wire types, shared by both codecs. XAPI's types map
// onto JSON and XML-RPC differently (ocaml/doc/wire-protocol.md): an int is a
// JSON number but a decimal string in XML-RPC; a datetime is a string in JSON
// and a dateTime.iso8601 in XML-RPC. Records keep JS numbers and XapiDate,
// and each codec writes them its own way.

/** A XenAPI datetime (UTC, XAPI's basic format 20261123T09:00:00Z). */
export class XapiDate {
  constructor(readonly date: Date) {}
  toXapiString(): string {
    return this.date
      .toISOString()
      .replace(/[-]/g, '')
      .replace(/\.\d+Z$/, 'Z');
  }
  toJSON(): string {
    return this.toXapiString();
  }
}

export type XapiValue = string | number | boolean | XapiDate | XapiValue[] | { [key: string]: XapiValue };

/** The null reference. */
export const NULL_REF = 'OpaqueRef:NULL';
