/**
 * Recognises the commonest request, `[id, "GET", key]`, in a frame body
 * without decoding it: the server's GET path then looks the key up by its
 * bytes, with no MessagePack decode and no key string.
 *
 * Only one exact shape is recognised; anything else (another command, "get"
 * in lower case, an id encoded as a signed or 64-bit int, a non-ASCII str
 * key, trailing bytes, …) answers false and goes through the general path,
 * which decodes it with msgpackr and gives the same answer or error as
 * always. For the shapes it accepts, the key bytes are the key's internal
 * form: a bin key as is, an ASCII str key its chars (non-ASCII str keys are
 * left to the general path, which decodes UTF-8 the way msgpackr does).
 *
 *   0x93 | id: fixint 0x00-0x7f, 0xcc u8, 0xcd u16, 0xce u32
 *        | 0xa3 'G' 'E' 'T'
 *        | key: fixstr 0xa1-0xbf, 0xd9 str8, 0xda str16, 0xdb str32,
 *               0xc4 bin8, 0xc5 bin16, 0xc6 bin32 — and nothing after it
 */

/** Where peekGet found the request's parts; valid until its next call. */
export const getRequest = { id: 0, keyStart: 0, keyLength: 0 };

/** True (and `getRequest` filled in) if `body` is exactly `[id, "GET", key]` in a shape described above. */
export function peekGet(body: Buffer): boolean {
  const end = body.length;
  if (end < 7 || body[0] !== 0x93) return false;
  let at = 1;
  const tag = body[at]!;
  let id: number;
  if (tag < 0x80) {
    id = tag;
    at += 1;
  } else if (tag === 0xcc) {
    id = body[at + 1]!;
    at += 2;
  } else if (tag === 0xcd) {
    if (at + 3 > end) return false;
    id = (body[at + 1]! << 8) | body[at + 2]!;
    at += 3;
  } else if (tag === 0xce) {
    if (at + 5 > end) return false;
    id = body.readUInt32BE(at + 1);
    at += 5;
  } else return false;
  if (at + 5 > end) return false;
  if (body[at] !== 0xa3 || body[at + 1] !== 0x47 || body[at + 2] !== 0x45 || body[at + 3] !== 0x54)
    return false;
  at += 4;
  const k = body[at]!;
  let length: number;
  let str = true;
  if (k > 0xa0 && k <= 0xbf) {
    length = k & 0x1f;
    at += 1;
  } else if (k === 0xd9 || k === 0xc4) {
    if (at + 2 > end) return false;
    length = body[at + 1]!;
    str = k === 0xd9;
    at += 2;
  } else if (k === 0xda || k === 0xc5) {
    if (at + 3 > end) return false;
    length = (body[at + 1]! << 8) | body[at + 2]!;
    str = k === 0xda;
    at += 3;
  } else if (k === 0xdb || k === 0xc6) {
    if (at + 5 > end) return false;
    length = body.readUInt32BE(at + 1);
    str = k === 0xdb;
    at += 5;
  } else return false;
  if (length === 0 || at + length !== end) return false;
  if (str) for (let i = at; i < end; i++) if (body[i]! >= 0x80) return false;
  getRequest.id = id;
  getRequest.keyStart = at;
  getRequest.keyLength = length;
  return true;
}
