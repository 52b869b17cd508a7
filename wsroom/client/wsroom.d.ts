// Type declarations of wsroom.js, the browser client of wsroom's JSON
// protocol (subprotocol "wsroom.v1").

/** The WebSocket subprotocol of the JSON protocol. */
export const SUBPROTOCOL: "wsroom.v1";

/** Close codes after which the client does not reconnect. */
export const FINAL_CLOSE_CODES: readonly number[];

/** A chat message. `id` is absent for a message sent to a few members only. */
export interface Message {
  id?: string;
  /** the sender; empty for a message from the server */
  from?: string;
  text: string;
  /** Unix milliseconds */
  ts: number;
}

/** What a close code means, and whether the client comes back after it. */
export interface CloseInfo {
  code: number;
  reason: string;
  reconnect: boolean;
  /** a sentence for a person */
  explanation: string;
}

export type State = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** The payload of a "state" event. */
/** A transport: WebSocket, or the HTTP fallback (Server-Sent Events down, POSTs up). */
export type Transport = "websocket" | "sse";

export interface StateEvent extends Partial<CloseInfo> {
  state: State;
  previous: State;
  /** connecting, reconnecting: the transport of the attempt */
  transport?: Transport;
  /** connecting over the fallback: the stream opened, but a proxy holds its events back */
  buffered?: boolean;
  /** reconnecting: the wait before the next attempt, in ms */
  delay?: number;
  /** reconnecting: when the next attempt starts, ms since the epoch */
  at?: number;
  /** connecting, reconnecting: the attempt's number (0: first) */
  attempt?: number;
}

export interface WelcomeEvent {
  type: "welcome";
  room: string;
  name: string;
  /** the first page of members, sorted */
  members: string[];
  /** all members of the room (the client pages the rest by itself) */
  count?: number;
  /** messages not seen before, oldest first (on a resume: those missed) */
  history: Message[];
  /** a resume could not be filled: some messages were missed */
  gap: boolean;
  /** this welcome follows an earlier one, or a given `since` */
  resumed: boolean;
}

export interface JoinEvent {
  type: "join";
  name: string;
  /** the name was already in the member list (a reconnect that replaced itself) */
  rejoined: boolean;
}

export interface LeaveEvent {
  type: "leave";
  name: string;
}

export interface PresenceEvent {
  type: "presence";
  joined: string[];
  left: string[];
}

/** The member list changed. */
export interface MembersEvent {
  /** the names known, sorted */
  members: string[];
  /** all members of the room */
  count: number;
  /** every member's name is known */
  complete: boolean;
}

export interface ChatMessageEvent extends Message {
  type: "message";
}

export interface HistoryEvent {
  type: "history";
  /** older messages, oldest first, without those already seen */
  messages: Message[];
  /** more history exists before these */
  more: boolean;
}

export interface BinaryEvent {
  data: Blob | ArrayBuffer;
}

export interface ChatErrorEvent {
  type: "error";
  /** a protocol code (bad_name, name_taken, rate_limited, …) or "bad_frame" */
  code: string;
  message: string;
  /** raised by the client itself (an unreadable frame), not the server */
  local?: boolean;
}

export interface ClientEvents {
  state: StateEvent;
  welcome: WelcomeEvent;
  join: JoinEvent;
  leave: LeaveEvent;
  presence: PresenceEvent;
  members: MembersEvent;
  message: ChatMessageEvent;
  history: HistoryEvent;
  binary: BinaryEvent;
  error: ChatErrorEvent;
}

export interface ClientOptions {
  /** the chat endpoint: ws:// or wss:// URL, or a path resolved against the page ("/chat/lobby") */
  url: string;
  /** the name to join under; empty when the server names the member (Identify) */
  name?: string;
  /** resume after this message id on the first connection */
  since?: string;
  /** reconnect after a connection is lost; default true */
  reconnect?: boolean;
  /** reconnect after a normal close (1000) by the server too; default false */
  normalReconnects?: boolean;
  /** first backoff ceiling, ms; default 500 */
  retryBase?: number;
  /** largest backoff ceiling, ms; default 30000 */
  retryMax?: number;
  /** attempts before giving up; default Infinity */
  maxRetries?: number;
  /** a connection open this long (ms) resets the backoff; default 5000 */
  stableAfter?: number;
  /** page size of olderMessages; default 50 */
  historyLimit?: number;
  /** page size of the member list; default 100 */
  membersLimit?: number;
  /** the client pages the member list by itself in rooms of at most this many members; beyond, loadMoreMembers pages it on demand; default 1000 */
  membersAuto?: number;
  /** ms between the pages the client asks for by itself (pages cost the rate limit); default 100 */
  membersPageDelay?: number;
  /** rejoins retried while the previous connection still holds the name; default 8 */
  nameRetries?: number;
  /** how binary messages arrive; default "blob" */
  binaryType?: BinaryType;
  /** for tests: the jitter source; default Math.random */
  random?: () => number;
  /** for tests and other environments: the WebSocket constructor */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  /**
   * the transports to use, in order of preference; default ["websocket", "sse"]:
   * WebSocket first, the HTTP fallback when the upgrade fails or no frame
   * arrives within fallbackAfter (then the fallback is kept for the session,
   * in sessionStorage). ["websocket"] never falls back; ["sse"] never tries WebSocket.
   */
  transports?: Transport[];
  /** ms a WebSocket may take to bring its first frame before the fallback is tried; default 8000 (0: never) */
  fallbackAfter?: number;
  /** ms after which a fallback stream that brought nothing is reported buffered (a "state" event with buffered); default 5000 */
  bufferedAfter?: number;
  /** for tests and other environments: fetch, for the fallback */
  fetch?: typeof fetch;
  /** where the fallback choice is kept; default sessionStorage */
  storage?: Pick<Storage, "getItem" | "setItem" | "removeItem">;
}

export class Client {
  constructor(options: ClientOptions);
  /** the transport in use, or of the next attempt */
  readonly transport: Transport;
  /** duplicate messages dropped */
  readonly duplicates: number;
  readonly state: State;
  readonly joined: boolean;
  readonly room: string;
  readonly name: string;
  /** the members known, sorted */
  readonly members: string[];
  /** all members of the room */
  readonly memberCount: number;
  /** the highest message id seen: where a reconnect resumes */
  readonly lastId: string | null;
  /** the lowest message id seen: where olderMessages pages back from */
  readonly oldestId: string | null;
  /** whether older history exists; null until a history page said */
  readonly moreHistory: boolean | null;
  /** when the pending reconnect starts (ms since the epoch); 0 if none */
  readonly retryAt: number;

  on<K extends keyof ClientEvents>(type: K, fn: (ev: ClientEvents[K]) => void): () => void;
  connect(): this;
  close(code?: number, reason?: string): void;
  reconnectNow(): boolean;
  join(name: string): boolean;
  send(text: string): boolean;
  sendBinary(data: Blob | ArrayBuffer | ArrayBufferView): boolean;
  olderMessages(limit?: number): boolean;
  requestHistory(req?: { before?: string; limit?: number }): boolean;
  requestMembers(req?: { after?: string; limit?: number }): boolean;
  /** the next page of the member list, in a room too big for the client to page by itself; false when complete or a page is on its way */
  loadMoreMembers(): boolean;
}

/** The request header of a fallback POST naming its stream. */
export const TOKEN_HEADER: "Wsroom-Token";

/** Reads the Server-Sent Events format from text chunks split anywhere. */
export class EventStreamParser {
  /** characters read, comments included */
  bytes: number;
  /** the last event id seen */
  lastEventId: string;
  push(chunk: string): Array<{ event: string; data: string; id: string }>;
}

/** The close event of an EventStreamSocket. */
export interface EventStreamCloseEvent {
  code: number;
  reason: string;
  wasClean: boolean;
  /** the HTTP status of a refused stream or POST; 0 otherwise */
  status: number;
  /** retrying cannot help (400, 401, 403, 404, 409, 501) */
  final: boolean;
}

/**
 * wsroom's HTTP fallback with the part of the WebSocket interface the
 * Client uses: Server-Sent Events down (fetch), POSTs up.
 */
export class EventStreamSocket {
  constructor(url: string, protocols?: string | string[], o?: { fetch?: typeof fetch; bufferedAfter?: number });
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly readyState: 0 | 1 | 2 | 3;
  readonly protocol: "wsroom.v1";
  readonly url: string;
  binaryType: BinaryType;
  onopen: ((ev: object) => void) | null;
  onmessage: ((ev: { data: string | Blob | ArrayBuffer }) => void) | null;
  onclose: ((ev: EventStreamCloseEvent) => void) | null;
  onerror: ((ev: object) => void) | null;
  /** nothing arrived within bufferedAfter ms of the response */
  onbuffered: (() => void) | null;
  send(data: string | Blob | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
}

export function explainClose(code: number, reason?: string, how?: { opened?: boolean; normalReconnects?: boolean }): CloseInfo;
export function parseFrame(data: string): Array<{ type: string; [key: string]: unknown }>;
export function backoffDelay(attempt: number, o?: { base?: number; max?: number }, random?: () => number): number;
export function compareIds(a: string, b: string): number;

export class IdSet {
  constructor(limit?: number);
  highest: string | null;
  lowest: string | null;
  add(id: string): boolean;
  note(id: string): void;
  has(id: string): boolean;
  readonly size: number;
}

export class MemberSet {
  reset(names: string[], count?: number): void;
  addPage(names: string[], count?: number): void;
  add(name: string): boolean;
  delete(name: string): boolean;
  apply(joined?: string[], left?: string[]): void;
  has(name: string): boolean;
  list(): string[];
  readonly size: number;
  readonly count: number;
  readonly complete: boolean;
}
