/* What ecdsa.c and crl.c share: argument helpers (defined in ecdsa.c) and crl.c's entry point. */
#ifndef MAYFLY_NATIVE_H
#define MAYFLY_NATIVE_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* a Uint8Array's bytes */
int mayfly_bytes_arg(napi_env env, napi_value v, const unsigned char **data, size_t *len);
/* a number in 0..max */
int mayfly_int_arg(napi_env env, napi_value v, int32_t max, int32_t *out);
/* exactly `n` arguments into argv */
int mayfly_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);

napi_value mayfly_crl_slots(napi_env env, napi_callback_info info);

#endif
