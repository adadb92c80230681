/* Firecracker's API over its Unix socket, from the supervisor's event loop: libcurl's multi
 * interface on libevent (CURLOPT_UNIX_SOCKET_PATH), one connection per Firecracker, kept
 * alive. A sequence of requests goes out in order, each once the previous one was answered
 * 2xx; the first failure ends it with Firecracker's fault_message. HTTP as Firecracker's
 * µhttp wants it (reference §1.1): Content-Type application/json, Content-Length, never
 * chunked, no Expect: 100-continue; a status line without a reason phrase is fine. */
#ifndef FCVM_SUP_FC_HTTP_H
#define FCVM_SUP_FC_HTTP_H

#include <stddef.h>

#include "supervisor/fc_api.h"

struct event_base;
struct fc_http;

/* status: the last answer's HTTP status (0: none came: connect failed, timed out); what: the
 * failed request ("PUT /drives/rootfs") or NULL; fault: Firecracker's message, or curl's. */
typedef void (*fc_http_done)(void *arg, long status, const char *what, const char *fault);

/* The first one sets libcurl up (under the supervisor's filter). NULL: out of memory, or
 * libcurl could not be set up. */
struct fc_http *fc_http_new(struct event_base *base, const char *api_socket);
/* Whatever runs is abandoned; its callback is not called. */
void fc_http_free(struct fc_http *h);

/* Send reqs[0..n) (copied: the caller keeps reqs), each within timeout_ms. One sequence at a
 * time per Firecracker: -EBUSY while one runs; 0 once it is under way (done comes later, from
 * the loop, exactly once). */
int fc_http_run(struct fc_http *h, const struct fc_request *reqs, size_t n, unsigned timeout_ms, fc_http_done done,
		void *arg);

#endif
