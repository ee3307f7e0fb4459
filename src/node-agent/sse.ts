// Reading server-sent events (the WHATWG event-stream format) from a fetch body: what OpenAI-compatible
// servers stream chat completions as. Only `data` matters here; comments and other fields are skipped.

/**
 * The data of each event in `body`, in order (the lines of a multi-line `data` joined with "\n").
 * Lenient at the end: an event not closed by a blank line before the body ends is still delivered.
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string, void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const eol = /\r\n|\r|\n/.exec(buffer);
        // A lone "\r" at the end may be the first half of a "\r\n" split across reads.
        if (!eol || (eol[0] === '\r' && eol.index === buffer.length - 1 && !done)) break;
        const line = buffer.slice(0, eol.index);
        buffer = buffer.slice(eol.index + eol[0].length);
        if (line === '') {
          if (data.length > 0) yield data.join('\n');
          data = [];
        } else {
          const value = dataField(line);
          if (value !== null) data.push(value);
        }
      }
      if (done) {
        const value = buffer === '' ? null : dataField(buffer);
        if (value !== null) data.push(value);
        if (data.length > 0) yield data.join('\n');
        return;
      }
    }
  } finally {
    // Stops the download when the caller stopped reading early (say, after [DONE]).
    await reader.cancel().catch(() => undefined);
  }
}

/** The value of a `data:` line (one optional space after the colon dropped); null for any other line. */
function dataField(line: string): string | null {
  if (line === 'data') return '';
  if (!line.startsWith('data:')) return null;
  const value = line.slice(5);
  return value.startsWith(' ') ? value.slice(1) : value;
}
