import { EJSON } from "bson";

/**
 * A tiny Data API client for the gateway tests: speaks the wire protocol with fetch + EJSON (relaxed, as the
 * app's client does) and hands back status, parsed body and headers without judging them.
 */

export type Doc = Record<string, unknown>;

export interface ApiResponse<T = Doc> {
  status: number;
  body: T;
  /** The body as sent (a relaxed parse rounds int64 values beyond 2^53). */
  text: string;
  headers: Headers;
}

export interface RawOptions {
  /** `null` sends no apiKey header at all. */
  apiKey?: string | null;
  contentType?: string;
  /** Use the short `/v1/action/...` path instead of the hosted API's path. */
  shortPath?: boolean;
}

export class DataApiTestClient {
  constructor(
    /** The gateway's base URL (…/app/data-api/endpoint/data/v1). */
    readonly baseUrl: string,
    readonly apiKey: string,
    readonly database: string,
    readonly dataSource = "circle",
  ) {}

  /** POSTs a body (an object is EJSON-stringified, a string is sent as is). */
  async raw<T = Doc>(action: string, body: Doc | string, options: RawOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { "content-type": options.contentType ?? "application/ejson" };
    const apiKey = options.apiKey === undefined ? this.apiKey : options.apiKey;
    if (apiKey !== null) headers.apiKey = apiKey;
    const url = options.shortPath
      ? `${new URL(this.baseUrl).origin}/v1/action/${action}`
      : `${this.baseUrl}/action/${action}`;
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : EJSON.stringify(body, { relaxed: true }),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: (text ? EJSON.parse(text, { relaxed: true }) : undefined) as T,
      text,
      headers: response.headers,
    };
  }

  /** One action on a collection of this client's database. */
  call<T = Doc>(action: string, collection: string, body: Doc = {}, options: RawOptions = {}): Promise<ApiResponse<T>> {
    return this.raw<T>(action, { dataSource: this.dataSource, database: this.database, collection, ...body }, options);
  }

  /** Like `call`, but a non-200 answer throws (with the error body in the message). */
  async ok<T = Doc>(action: string, collection: string, body: Doc = {}): Promise<T> {
    const response = await this.call<T>(action, collection, body);
    if (response.status !== 200) {
      throw new Error(
        `${action} on ${collection} answered ${response.status}: ${EJSON.stringify(response.body as Doc)}`,
      );
    }
    return response.body;
  }

  async findAll(collection: string, filter: Doc = {}, sort: Doc = { _id: 1 }): Promise<Doc[]> {
    return (await this.ok<{ documents: Doc[] }>("find", collection, { filter, sort })).documents;
  }
}
