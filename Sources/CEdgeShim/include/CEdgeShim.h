// Typed wrappers for libcurl's variadic functions (curl_easy_setopt, curl_easy_getinfo), which Swift cannot
// call directly. What touches the OS itself is in CEdgeSystem.
#ifndef CEDGESHIM_H
#define CEDGESHIM_H

#include <stdint.h>
#include <curl/curl.h>

// ---- libcurl -------------------------------------------------------------
CURLcode edge_curl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode edge_curl_setopt_ptr(CURL *handle, CURLoption option, void *value);
CURLcode edge_curl_setopt_str(CURL *handle, CURLoption option, const char *value);
CURLcode edge_curl_setopt_off(CURL *handle, CURLoption option, int64_t value);
CURLcode edge_curl_setopt_writefunction(CURL *handle,
    size_t (*fn)(char *ptr, size_t size, size_t nmemb, void *userdata));
CURLcode edge_curl_setopt_headerfunction(CURL *handle,
    size_t (*fn)(char *ptr, size_t size, size_t nmemb, void *userdata));
CURLcode edge_curl_getinfo_long(CURL *handle, CURLINFO info, long *out);
CURLcode edge_curl_getinfo_double(CURL *handle, CURLINFO info, double *out);
CURLcode edge_curl_getinfo_off(CURL *handle, CURLINFO info, int64_t *out);
/// Non-zero when libcurl was built against OpenSSL (the Debian "openssl flavour").
int edge_curl_uses_openssl(void);

#endif
