/**
 * Token resolution (PROTOCOL.md §1): `tmp-` tokens, HS256 JWTs, and the SharePython HTTP lookup
 * with a timeout, a short cache of answers, and one request for many simultaneous joins.
 */
import { jwtVerify } from 'jose';
import { CloseCode, ProtocolError, type CloseCodeEntry } from '../protocol/close_codes.ts';
import { CODESPACE_ID_PATTERN, type Mode } from '../protocol/messages.ts';

export interface Grant {
  codespace: string;
  mode: Mode;
}

export interface AuthOptions {
  allowTmp: boolean;
  apiBaseUrl: string;
  jwtSecret: string;
  authTimeoutMs: number;
  authCacheMs: number;
  now?: () => number;
}

type Answer = { grant: Grant } | { refusal: CloseCodeEntry; why: string };

/** Who waits for a token's answer; read only when an HTTP lookup is needed. */
export interface Asker {
  readonly leftSignal: AbortSignal;
}

/** One HTTP lookup and the joins waiting for it; abandoned when the last of them has gone. */
interface Lookup {
  answer: Promise<Answer>;
  waiters: number;
  abandon: AbortController;
}

/**
 * PROTOCOL.md §1. `=` is in: SharePython's share and owner tokens are URL-safe base64 of 80 or 85
 * bytes and end in `=` or `==` (issue 12); every character here is safe in a URL path as it is.
 */
export const TOKEN_PATTERN = /^[A-Za-z0-9_.:~=-]{1,256}$/;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Enough for every token in use at once on one instance; the oldest answer goes first. */
const MAX_CACHED_ANSWERS = 10_000;

function isMode(value: unknown): value is Mode {
  return value === 'edit' || value === 'view_only';
}

function refuse(refusal: CloseCodeEntry, why: string): Answer {
  return { refusal, why };
}

export class TokenResolver {
  readonly #options: AuthOptions;
  readonly #now: () => number;
  readonly #secret: Uint8Array | null;
  readonly #cache = new Map<string, { answer: Answer; expires: number }>();
  readonly #inFlight = new Map<string, Lookup>();
  readonly #aborter = new AbortController();
  #lookupsSent = 0;

  constructor(options: AuthOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : null;
  }

  get lookupsSent(): number {
    return this.#lookupsSent;
  }

  /**
   * A grant, or a ProtocolError carrying 4401, 4404 or 1013. The asker's `leftSignal` aborts
   * when it has gone: a lookup nobody waits for any more is cancelled, so clients that vanish
   * mid-auth cannot pile up sockets to the API.
   */
  async resolve(token: string, asker?: Asker): Promise<Grant> {
    const answer = await this.#answer(token, asker);
    if ('grant' in answer) return answer.grant;
    throw new ProtocolError(answer.refusal, answer.why);
  }

  close(): void {
    this.#aborter.abort();
    this.#cache.clear();
  }

  async #answer(token: string, asker: Asker | undefined): Promise<Answer> {
    if (!TOKEN_PATTERN.test(token)) return refuse(CloseCode.tokenRefused, 'malformed token');
    if (token.startsWith('tmp-')) {
      if (!this.#options.allowTmp) return refuse(CloseCode.tokenRefused, 'tmp- codespaces are switched off');
      if (!CODESPACE_ID_PATTERN.test(token)) return refuse(CloseCode.tokenRefused, 'bad codespace id');
      return { grant: { codespace: token, mode: 'edit' } };
    }
    if (this.#secret && JWT_SHAPE.test(token)) return this.#verifyJwt(token, this.#secret);
    if (!this.#options.apiBaseUrl) return refuse(CloseCode.tokenRefused, 'no way to resolve this token');
    return this.#lookupCached(token, asker);
  }

  async #verifyJwt(token: string, secret: Uint8Array): Promise<Answer> {
    try {
      const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], requiredClaims: ['exp'] });
      if (typeof payload.codespace !== 'string' || !CODESPACE_ID_PATTERN.test(payload.codespace)) {
        return refuse(CloseCode.tokenRefused, 'JWT without a valid codespace claim');
      }
      if (!isMode(payload.mode)) return refuse(CloseCode.tokenRefused, 'JWT without a valid mode claim');
      return { grant: { codespace: payload.codespace, mode: payload.mode } };
    } catch {
      return refuse(CloseCode.tokenRefused, 'JWT not valid');
    }
  }

  #lookupCached(token: string, asker: Asker | undefined): Promise<Answer> {
    const cached = this.#cache.get(token);
    if (cached && cached.expires > this.#now()) return Promise.resolve(cached.answer);
    if (cached) this.#cache.delete(token);
    let lookup = this.#inFlight.get(token);
    if (!lookup) {
      const abandon = new AbortController();
      const answered = this.#lookup(token, abandon.signal).then((answer) => {
        if (this.#inFlight.get(token)?.abandon === abandon) this.#inFlight.delete(token);
        // An unavailable service is not an answer about the token: ask again next time.
        if (('grant' in answer || answer.refusal !== CloseCode.authUnavailable) && this.#options.authCacheMs > 0) {
          if (this.#cache.size >= MAX_CACHED_ANSWERS) this.#cache.delete(this.#cache.keys().next().value!);
          this.#cache.set(token, { answer, expires: this.#now() + this.#options.authCacheMs });
        }
        return answer;
      });
      lookup = { waiters: 0, abandon, answer: answered };
      this.#inFlight.set(token, lookup);
    }
    this.#wait(token, lookup, asker?.leftSignal);
    return lookup.answer;
  }

  /** Counts one more join waiting on `lookup`; when every one has gone, the request is aborted. */
  #wait(token: string, lookup: Lookup, gone: AbortSignal | undefined): void {
    lookup.waiters++;
    if (!gone) return;
    const leave = (): void => {
      if (--lookup.waiters > 0) return;
      // A join arriving from now on starts a lookup of its own, not this abandoned one.
      if (this.#inFlight.get(token) === lookup) this.#inFlight.delete(token);
      lookup.abandon.abort();
    };
    if (gone.aborted) return leave();
    gone.addEventListener('abort', leave, { once: true });
    void lookup.answer.then(() => gone.removeEventListener('abort', leave));
  }

  async #lookup(token: string, abandoned: AbortSignal): Promise<Answer> {
    // As the frontend asks for it: TOKEN_PATTERN leaves nothing that needs escaping in a path.
    const url = `${this.#options.apiBaseUrl}codespace/${token}/?fields=uuid,mode`;
    this.#lookupsSent++;
    let response: Response;
    let body: unknown;
    try {
      const signal = AbortSignal.any([this.#aborter.signal, abandoned, AbortSignal.timeout(this.#options.authTimeoutMs)]);
      response = await fetch(url, { signal, headers: { accept: 'application/json' } });
      if (response.status !== 200) {
        await response.body?.cancel();
        return this.#refusalFor(response.status);
      }
      body = await response.json().catch(() => null);
    } catch {
      return refuse(CloseCode.authUnavailable, 'auth service unreachable or too slow');
    }
    const { uuid, mode } = (body ?? {}) as { uuid?: unknown; mode?: unknown };
    if (typeof uuid !== 'string' || !CODESPACE_ID_PATTERN.test(uuid) || !isMode(mode)) {
      return refuse(CloseCode.tokenRefused, 'auth service answered without a valid uuid and mode');
    }
    return { grant: { codespace: uuid, mode } };
  }

  #refusalFor(status: number): Answer {
    if (status === 404) return refuse(CloseCode.notFound, 'no such codespace');
    if (status >= 500) return refuse(CloseCode.authUnavailable, `auth service answered ${status}`);
    return refuse(CloseCode.tokenRefused, `auth service answered ${status}`);
  }
}
