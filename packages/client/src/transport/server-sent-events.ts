// A Server-Sent Events parser (the WHATWG "event stream interpretation"), fed text in chunks of any size.

/** One dispatched event: `data` lines joined by "\n"; `id` is the last id seen (SSE's "last event ID"). */
export interface ServerSentEvent {
  event: string;
  data: string;
  id: string;
}

/**
 * Incremental parser: `push()` text as it arrives (split anywhere, even inside a CRLF) and get the events it
 * completed. Comments (`: keep-alive`) and `retry:` produce no event; a block without `data` is not dispatched.
 * Decode bytes with `TextDecoder` and `{ stream: true }` so that a character split across chunks stays whole.
 */
export class ServerSentEventParser {
  private buffer = '';
  private started = false;
  /** A chunk ended with CR: an LF opening the next chunk belongs to that line ending. */
  private pendingCarriageReturn = false;
  private data: string[] = [];
  private eventType = '';
  private lastEventId = '';

  push(text: string): ServerSentEvent[] {
    if (!text) return [];
    if (this.pendingCarriageReturn && text.startsWith('\n')) text = text.slice(1);
    this.pendingCarriageReturn = false;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    const events: ServerSentEvent[] = [];
    const lineEnds = /[\r\n]/g;
    let start = 0;
    for (let match; (match = lineEnds.exec(this.buffer)); ) {
      const end = match.index;
      const line = this.buffer.slice(start, end);
      let next = end + 1;
      if (this.buffer[end] === '\r') {
        if (next === this.buffer.length) this.pendingCarriageReturn = true;
        else if (this.buffer[next] === '\n') next++;
      }
      start = lineEnds.lastIndex = next;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === '') {
      const event = this.data.length ? { event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastEventId } : undefined;
      this.data = [];
      this.eventType = '';
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.eventType = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    return undefined;
  }
}
