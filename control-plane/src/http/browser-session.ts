import { createHmac, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Db } from '../db/database.js';
import { ProblemError, unauthorized } from '../problem.js';
import type { AuthEnv, AuthSettings } from './auth.js';
import { parseJson } from './input.js';
import type { Ctx } from './route-deps.js';
import { checkLogin, endSession, issue, LoginBody, type RateLimit, rotate } from './session-routes.js';

/**
 * Sessions in a browser (the web dashboard): the refresh token lives only in an HttpOnly,
 * SameSite=Strict cookie scoped to these routes (Secure over https), the access token only
 * in the page's memory. The cookie authenticates exactly two calls, refresh and logout, and
 * each needs the CSRF token in `X-CSRF-Token`: an HMAC of the refresh token, which the page
 * reads from the `dbb_csrf` cookie (a page on another site can neither read it nor send a
 * header). Every other call carries the access token as a bearer header, which a browser
 * never adds by itself, so it cannot be forged across sites.
 */

export const SESSION_PATH = '/api/v1/auth/session';
const REFRESH_COOKIE = 'dbb_refresh';
const CSRF_COOKIE = 'dbb_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const forbiddenCsrf = (detail: string) => new ProblemError(403, 'Forbidden', detail, { type: 'csrf' });

function csrfFor(s: AuthSettings, refreshToken: string): string {
  return createHmac('sha256', s.jwtKey).update(`csrf\0${refreshToken}`).digest('base64url');
}

function setSessionCookies(c: Ctx, s: AuthSettings, refreshToken: string) {
  const base = {
    secure: s.secureCookies ?? false,
    sameSite: 'Strict' as const,
    maxAge: s.refreshTokenTtlSeconds,
  };
  setCookie(c, REFRESH_COOKIE, refreshToken, { ...base, httpOnly: true, path: SESSION_PATH });
  const csrfToken = csrfFor(s, refreshToken);
  setCookie(c, CSRF_COOKIE, csrfToken, { ...base, httpOnly: false, path: '/' });
  return csrfToken;
}

function clearSessionCookies(c: Ctx) {
  deleteCookie(c, REFRESH_COOKIE, { path: SESSION_PATH });
  deleteCookie(c, CSRF_COOKIE, { path: '/' });
}

/** The refresh token a cookie-authenticated call carries, once its CSRF token is checked. */
function cookieSession(c: Ctx, s: AuthSettings): string {
  const refreshToken = getCookie(c, REFRESH_COOKIE);
  if (!refreshToken) throw unauthorized('no browser session: log in', 'no-session');
  const sent = c.req.header(CSRF_HEADER) ?? '';
  if (!sent) throw forbiddenCsrf(`a cookie-authenticated call needs the ${CSRF_HEADER} header`);
  const want = Buffer.from(csrfFor(s, refreshToken));
  const got = Buffer.from(sent);
  if (got.length !== want.length || !timingSafeEqual(got, want))
    throw forbiddenCsrf(`the ${CSRF_HEADER} header does not match this session`);
  return refreshToken;
}

/** What the page keeps in memory: the access token, the CSRF token, who it is. */
async function browserTokens(c: Ctx, db: Db, s: AuthSettings, user: Parameters<typeof issue>[2]) {
  const t = await issue(db, s, user);
  const csrfToken = setSessionCookies(c, s, t.refreshToken);
  c.header('cache-control', 'no-store');
  return {
    accessToken: t.accessToken,
    tokenType: t.tokenType,
    expiresIn: t.expiresIn,
    csrfToken,
    user: t.user,
  };
}

/** POST /auth/session (log in), /auth/session/refresh, /auth/session/logout. */
export function browserSessionRoutes(db: Db, s: AuthSettings, limit: RateLimit) {
  const r = new Hono<AuthEnv>();
  r.post('/auth/session', async (c) => {
    const body = await parseJson(c, LoginBody);
    return c.json(await browserTokens(c, db, s, await checkLogin(c, db, s, limit, body)), 200);
  });
  r.post('/auth/session/refresh', async (c) => {
    const refreshToken = cookieSession(c, s);
    try {
      return c.json(await browserTokens(c, db, s, await rotate(c, db, refreshToken)), 200);
    } catch (err) {
      clearSessionCookies(c);
      throw err;
    }
  });
  r.post('/auth/session/logout', async (c) => {
    const refreshToken = cookieSession(c, s);
    await endSession(db, refreshToken);
    clearSessionCookies(c);
    return c.body(null, 204);
  });
  return r;
}
