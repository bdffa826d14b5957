/*
 * ECDSA for the X.509 layer, on the OpenSSL that Node itself links and exports: the signature check of
 * CSRs (src/x509/csr.ts) and the CA's signatures on certificates, CRLs and OCSP answers
 * (src/x509/algs.ts).
 *
 * Why: with Node 20's OpenSSL 3.0, node:crypto spends ~80-110 µs importing a P-256 public key (a
 * KeyObject, exported into a provider on first use) before the ~90 µs verify. A new agent key is a new
 * import on every CSR. The low-level EC_KEY/ECDSA calls below do the same mathematics with the same
 * library, without the provider round trip: ~70 µs for import + verify together (bench/certs.ts
 * prints both). Everything here is OpenSSL's own code; this file only moves bytes in and out.
 *
 *   verify(curve, point, hash, message, signature) -> 1 valid | 0 invalid signature | -1 key not usable
 *     curve      0 = P-256 (prime256v1), 1 = P-384 (secp384r1)
 *     point      Uint8Array, the SEC1 point exactly as in the SPKI (o2i_ECPublicKey: on-curve check;
 *                both curves have cofactor 1, so a point on the curve is in the prime-order group;
 *                the point at infinity is refused)
 *     hash       0 = SHA-256, 1 = SHA-384, 2 = SHA-512 (of `message`, computed here)
 *     message    Uint8Array, the signed bytes (the CSR's CertificationRequestInfo)
 *     signature  Uint8Array, DER ECDSA-Sig-Value (ECDSA_verify refuses non-canonical DER)
 *   Throws a TypeError on wrong argument types or sizes.
 *
 *   signer(curve, sec1) -> an opaque handle holding the CA's EC private key (freed, and its scalar
 *     cleared by EC_KEY_free, when the handle is garbage-collected). `sec1` is the SEC1 ECPrivateKey DER
 *     (KeyObject.export({type: 'sec1'})); the key must be on `curve` and consistent (EC_KEY_check_key).
 *     The caller wipes its copy of `sec1`. Throws a TypeError otherwise.
 *   sign(handle, hash, message) -> Buffer, the DER ECDSA-Sig-Value over the hash of `message`, or null
 *     if OpenSSL failed (the caller then signs with node:crypto). ECDSA_sign is the same OpenSSL code
 *     node:crypto reaches through its provider (constant-time scalar multiplication, random nonce); what
 *     is saved is the per-call EVP context set-up: ~24 against ~33 µs for P-256 (bench/certs.ts).
 *
 * OpenSSL's per-thread error queue is cleared on every failure, so no stale error leaks into a later
 * node:crypto call on the same thread.
 */
#include "native.h"
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/sha.h>

#define MAX_POINT 97          /* uncompressed P-384 */
#define MAX_SIG 139           /* DER ECDSA-Sig-Value for P-384 with 2-byte lengths, with margin */
#define MAX_MESSAGE (64 * 1024)
#define MAX_SEC1 512
#define MAX_SIGNED (64 * 1024 * 1024) /* a CRL's TBSCertList grows with its entries */

static const int curve_nids[2] = {NID_X9_62_prime256v1, NID_secp384r1};
/* marks the handles `signer` makes, so `sign` never takes another addon's external for an EC_KEY */
static const napi_type_tag SIGNER_TAG = {0x6d617966c9a1b2c3ULL, 0x4ec5d5a13f0e7b29ULL};

static EC_GROUP *groups[2];

/* the argument helpers below are shared with crl.c (native.h) */

int mayfly_bytes_arg(napi_env env, napi_value v, const unsigned char **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

/* exactly `n` arguments into argv */
int mayfly_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == n;
}

int mayfly_int_arg(napi_env env, napi_value v, int32_t max, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
  if (napi_get_value_int32(env, v, out) != napi_ok) return 0;
  return *out >= 0 && *out <= max;
}

/* SHA-256/384/512 of `msg` into `digest` (at least SHA512_DIGEST_LENGTH bytes); returns its length. */
static int hash_of(int32_t hash, const unsigned char *msg, size_t msg_len, unsigned char *digest) {
  if (hash == 0) {
    SHA256(msg, msg_len, digest);
    return SHA256_DIGEST_LENGTH;
  }
  if (hash == 1) {
    SHA384(msg, msg_len, digest);
    return SHA384_DIGEST_LENGTH;
  }
  SHA512(msg, msg_len, digest);
  return SHA512_DIGEST_LENGTH;
}

static napi_value Verify(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t curve, hash;
  const unsigned char *point, *msg, *sig;
  size_t point_len, msg_len, sig_len;
  if (!mayfly_args(env, info, 5, argv) || !mayfly_int_arg(env, argv[0], 1, &curve) || !mayfly_bytes_arg(env, argv[1], &point, &point_len) || !mayfly_int_arg(env, argv[2], 2, &hash) ||
      !mayfly_bytes_arg(env, argv[3], &msg, &msg_len) || !mayfly_bytes_arg(env, argv[4], &sig, &sig_len) || point_len == 0 ||
      point_len > MAX_POINT || msg_len > MAX_MESSAGE || sig_len > MAX_SIG || groups[curve] == NULL) {
    napi_throw_type_error(env, NULL, "verify(curve, point, hash, message, signature): bad argument");
    return NULL;
  }

  unsigned char digest[SHA512_DIGEST_LENGTH];
  int digest_len = hash_of(hash, msg, msg_len, digest);

  int result = -1;
  EC_KEY *key = EC_KEY_new();
  if (key != NULL && EC_KEY_set_group(key, groups[curve]) == 1) {
    const unsigned char *p = point;
    if (o2i_ECPublicKey(&key, &p, (long)point_len) != NULL && p == point + point_len &&
        !EC_POINT_is_at_infinity(groups[curve], EC_KEY_get0_public_key(key))) {
      result = ECDSA_verify(0, digest, digest_len, sig, (int)sig_len, key) == 1 ? 1 : 0;
    }
  }
  EC_KEY_free(key);
  if (result != 1) ERR_clear_error();

  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

static void free_signer(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  EC_KEY_free((EC_KEY *)data);
}

static napi_value Signer(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t curve;
  const unsigned char *der;
  size_t der_len;
  if (!mayfly_args(env, info, 2, argv) || !mayfly_int_arg(env, argv[0], 1, &curve) || !mayfly_bytes_arg(env, argv[1], &der, &der_len) || der_len == 0 ||
      der_len > MAX_SEC1) {
    napi_throw_type_error(env, NULL, "signer(curve, sec1)");
    return NULL;
  }
  const unsigned char *p = der;
  EC_KEY *key = d2i_ECPrivateKey(NULL, &p, (long)der_len);
  if (key == NULL || p != der + der_len || EC_GROUP_get_curve_name(EC_KEY_get0_group(key)) != curve_nids[curve] ||
      EC_KEY_get0_public_key(key) == NULL || EC_KEY_check_key(key) != 1) {
    EC_KEY_free(key);
    ERR_clear_error();
    napi_throw_type_error(env, NULL, "signer: not an EC private key on that curve");
    return NULL;
  }
  napi_value out;
  if (napi_create_external(env, key, free_signer, NULL, &out) != napi_ok) {
    EC_KEY_free(key);
    napi_throw_error(env, NULL, "signer: cannot create the handle");
    return NULL;
  }
  if (napi_type_tag_object(env, out, &SIGNER_TAG) != napi_ok) {
    napi_throw_error(env, NULL, "signer: cannot tag the handle");
    return NULL;
  }
  return out;
}

static napi_value Sign(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t hash;
  const unsigned char *msg;
  size_t msg_len;
  bool tagged = false;
  void *data = NULL;
  if (!mayfly_args(env, info, 3, argv) || napi_check_object_type_tag(env, argv[0], &SIGNER_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL || !mayfly_int_arg(env, argv[1], 2, &hash) ||
      !mayfly_bytes_arg(env, argv[2], &msg, &msg_len) || msg_len > MAX_SIGNED) {
    napi_throw_type_error(env, NULL, "sign(signer, hash, message)");
    return NULL;
  }
  EC_KEY *key = data;
  unsigned char digest[SHA512_DIGEST_LENGTH];
  int digest_len = hash_of(hash, msg, msg_len, digest);
  unsigned char sig[MAX_SIG];
  unsigned int sig_len = sizeof sig;
  napi_value out;
  if (ECDSA_size(key) > (int)sizeof sig || ECDSA_sign(0, digest, digest_len, sig, &sig_len, key) != 1) {
    ERR_clear_error();
    napi_get_null(env, &out);
    return out;
  }
  if (napi_create_buffer_copy(env, sig_len, sig, NULL, &out) != napi_ok) {
    napi_get_null(env, &out);
  }
  return out;
}

NAPI_MODULE_INIT() {
  if (groups[0] == NULL) groups[0] = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  if (groups[1] == NULL) groups[1] = EC_GROUP_new_by_curve_name(NID_secp384r1);
  napi_value fn;
  if (napi_create_function(env, "verify", NAPI_AUTO_LENGTH, Verify, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "verify", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "signer", NAPI_AUTO_LENGTH, Signer, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "signer", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "sign", NAPI_AUTO_LENGTH, Sign, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sign", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "crlSlots", NAPI_AUTO_LENGTH, mayfly_crl_slots, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "crlSlots", fn) != napi_ok) return NULL;
  return exports;
}
