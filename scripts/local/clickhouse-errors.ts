/** An error already in ClickHouse's text form: `Code: N. DB::Exception: message. (NAME)`. */
export class ClickHouseHttpError extends Error {
  constructor(
    readonly code: number,
    readonly errorName: string,
    message: string,
  ) {
    super(`Code: ${code}. DB::Exception: ${message}. (${errorName})`);
  }
}
