/**
 * A multipart/form-data body for `app.inject`: the fields before the `file` part, then the file,
 * then `after` (fields a client sends after the file, as `curl -F file=@x.csv -F on_error=skip` does).
 */
export function multipart(
  fields: Record<string, string>,
  file: { name: string; content: string | Buffer },
  after: Record<string, string> = {},
): { payload: Buffer; headers: { 'content-type': string } } {
  const boundary = `----zinc${Math.random().toString(16).slice(2)}`;
  const field = ([key, value]: [string, string]) =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${key}"\r\n\r\n${value}\r\n`);
  const parts: Buffer[] = Object.entries(fields).map(field);
  parts.push(
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: text/csv\r\n\r\n`),
    Buffer.from(file.content),
    Buffer.from('\r\n'),
    ...Object.entries(after).map(field),
    Buffer.from(`--${boundary}--\r\n`),
  );
  return { payload: Buffer.concat(parts), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}
