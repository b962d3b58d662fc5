// Proof of work for a sign-up, where the site asks for it
// (engine/accounts/challenge.py, BITESIZE_SIGNUP_WORK): find a nonce such that
// SHA-256("<challenge>:<nonce>") starts with `bits` zero bits.
//
// SHA-256 (FIPS 180-4) is written out here for short ASCII texts: the Web
// Crypto API hashes asynchronously, one promise per hash, and is missing on a
// page served over plain HTTP. The search gives the page back every few
// thousand hashes, so it stays responsive while it works.
(function () {
  "use strict";
  // The first 32 bits of the fractional parts of the square roots (initial
  // hash) and cube roots (round constants) of the first primes.
  const H0 = new Uint32Array(8);
  const K = new Uint32Array(64);
  for (let p = 2, n = 0; n < 64; p += 1) {
    let prime = true;
    for (let d = 2; d * d <= p; d += 1) if (p % d === 0) { prime = false; break; }
    if (!prime) continue;
    if (n < 8) H0[n] = (Math.sqrt(p) % 1) * 4294967296;
    K[n] = (Math.cbrt(p) % 1) * 4294967296;
    n += 1;
  }
  const schedule = new Uint32Array(64);

  function ror(x, n) { return (x >>> n) | (x << (32 - n)); }

  function sha256(text) {  // the digest's eight 32-bit words
    const length = text.length;
    const words = ((length + 9 + 63) >> 6) << 4;
    const padded = new Uint32Array(words);
    for (let i = 0; i < length; i += 1) padded[i >> 2] |= text.charCodeAt(i) << (24 - (i & 3) * 8);
    padded[length >> 2] |= 0x80 << (24 - (length & 3) * 8);
    padded[words - 1] = length * 8;
    const h = H0.slice();
    const m = schedule;
    for (let block = 0; block < words; block += 16) {
      for (let i = 0; i < 16; i += 1) m[i] = padded[block + i];
      for (let i = 16; i < 64; i += 1) {
        const x = m[i - 15], y = m[i - 2];
        m[i] = m[i - 16] + (ror(x, 7) ^ ror(x, 18) ^ (x >>> 3)) + m[i - 7]
          + (ror(y, 17) ^ ror(y, 19) ^ (y >>> 10));
      }
      let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (let i = 0; i < 64; i += 1) {
        const t1 = (k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + m[i]) | 0;
        const t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    }
    return h;
  }

  // The nonce (a decimal string) that solves a challenge; at most 30 bits are asked.
  async function solve(challenge, bits) {
    if (!bits) return "0";
    const prefix = challenge + ":";
    for (let nonce = 0; ; nonce += 1) {
      if (nonce % 5000 === 4999) await new Promise(function (done) { setTimeout(done, 0); });
      if (sha256(prefix + nonce)[0] >>> (32 - bits) === 0) return String(nonce);
    }
  }

  window.bitesizeSignUpWork = {solve: solve, sha256: sha256};
})();
