/* Firecracker's API client (fc_http.h): curl's multi interface driven by libevent, the
 * pattern of curl's own hiperfifo/ephiperfifo examples: curl says which socket to watch
 * (socket callback) and when to wake it (timer callback); libevent calls back into
 * curl_multi_socket_action. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/util.h"
#include "supervisor/fc_http.h"

#define FC_BODY_MAX 16384 /* answers are small: a fault message, the instance info */

struct fc_watch {
	struct fc_http *h;
	struct event *ev;
};

struct fc_http {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	char socket[108];
	/* the sequence under way */
	struct fc_request reqs[FC_REQUESTS_MAX];
	size_t n, next;
	unsigned timeout_ms;
	fc_http_done done;
	void *arg;
	CURL *easy; /* the request in flight, or NULL */
	struct curl_slist *headers;
	char body[FC_BODY_MAX];
	size_t body_len;
	char errbuf[CURL_ERROR_SIZE];
};

static void free_sequence(struct fc_http *h)
{
	for (size_t i = 0; i < h->n; i++)
		fc_request_free(&h->reqs[i]);
	h->n = h->next = 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fc_http *h = arg;
	size_t len = size * nmemb, room = sizeof(h->body) - 1 - h->body_len;
	memcpy(h->body + h->body_len, data, len < room ? len : room);
	h->body_len += len < room ? len : room;
	return len;
}

static int start_next(struct fc_http *h);

static void finish(struct fc_http *h, long status, const char *what, const char *fault)
{
	fc_http_done done = h->done;
	void *arg = h->arg;
	free_sequence(h);
	h->done = NULL;
	if (done)
		done(arg, status, what, fault);
}

/* The request in flight ended: the next one, or the sequence's end. */
static void request_ended(struct fc_http *h, CURLcode res)
{
	long status = 0;
	char what[96], fault[512] = "";
	const struct fc_request *r = &h->reqs[h->next];
	snprintf(what, sizeof(what), "%s %s", r->method, r->path);
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(h->multi, h->easy);
	curl_easy_cleanup(h->easy);
	h->easy = NULL;
	if (res != CURLE_OK) {
		snprintf(fault, sizeof(fault), "%.500s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(res));
		finish(h, 0, what, fault);
		return;
	}
	if (status < 200 || status > 299) {
		/* {"fault_message": ...} from Firecracker, {"error": ...} from its HTTP layer */
		h->body[h->body_len] = '\0';
		json_t *j = json_loads(h->body, 0, NULL);
		const char *m = json_string_value(json_object_get(j, "fault_message"));
		if (!m)
			m = json_string_value(json_object_get(j, "error"));
		snprintf(fault, sizeof(fault), "%.500s", m ? m : h->body_len ? h->body : "no message");
		json_decref(j);
		finish(h, status, what, fault);
		return;
	}
	if (++h->next == h->n) {
		finish(h, status, NULL, NULL);
		return;
	}
	int rc = start_next(h);
	if (rc < 0)
		finish(h, 0, what, "cannot make the next request");
}

static void read_done(struct fc_http *h)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(h->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == h->easy) {
			request_ended(h, m->data.result);
			return; /* the next request is a new handle: read again from the loop */
		}
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	struct fc_http *h = arg;
	int running = 0, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(h->multi, fd, flags, &running);
	read_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fc_http *h = arg;
	int running = 0;
	(void)fd;
	(void)what;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	read_done(h);
}

/* curl: watch s for what (or stop watching it) */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct fc_http *h = userp;
	struct fc_watch *w = socketp;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (w) {
			event_free(w->ev);
			free(w);
		}
		curl_multi_assign(h->multi, s, NULL);
		return 0;
	}
	short ev = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
	if (w)
		event_free(w->ev);
	else if (!(w = calloc(1, sizeof(*w))))
		return -1;
	w->h = h;
	w->ev = event_new(h->base, s, ev, on_socket_event, h);
	if (!w->ev || event_add(w->ev, NULL) < 0) {
		free(w);
		return -1;
	}
	curl_multi_assign(h->multi, s, w);
	return 0;
}

/* curl: wake it in ms (-1: never) */
static int on_timer_set(CURLM *multi, long ms, void *userp)
{
	struct fc_http *h = userp;
	(void)multi;
	if (ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	return evtimer_add(h->timer, &tv) < 0 ? -1 : 0;
}

static int start_next(struct fc_http *h)
{
	const struct fc_request *r = &h->reqs[h->next];
	char url[96];
	CURL *e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://localhost%s", r->path);
	h->body_len = 0;
	h->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, h->socket);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	if (r->body) { /* the body as it is, with its length: never chunked */
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	} else if (strcmp(r->method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	}
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		return -EIO;
	}
	h->easy = e;
	return 0;
}

struct fc_http *fc_http_new(struct event_base *base, const char *api_socket)
{
	/* libcurl's global set-up, at the first Firecracker VM: it initialises OpenSSL (even for
	 * plain HTTP), which costs the supervisor some 8 MB it need not carry without one */
	static bool global_done;
	if (!global_done && curl_global_init(CURL_GLOBAL_NOTHING) != CURLE_OK)
		return NULL;
	global_done = true;
	struct fc_http *h = calloc(1, sizeof(*h));
	if (!h || strlen(api_socket) >= sizeof(h->socket)) {
		free(h);
		return NULL;
	}
	h->base = base;
	snprintf(h->socket, sizeof(h->socket), "%s", api_socket);
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, on_timer, h);
	/* Expect: none (µhttp refuses 100-continue); Accept as Firecracker answers */
	h->headers = curl_slist_append(NULL, "Content-Type: application/json");
	h->headers = h->headers ? curl_slist_append(h->headers, "Accept: application/json") : NULL;
	h->headers = h->headers ? curl_slist_append(h->headers, "Expect:") : NULL;
	if (!h->multi || !h->timer || !h->headers) {
		fc_http_free(h);
		return NULL;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L); /* one connection per Firecracker */
	return h;
}

void fc_http_free(struct fc_http *h)
{
	if (!h)
		return;
	if (h->easy) {
		curl_multi_remove_handle(h->multi, h->easy);
		curl_easy_cleanup(h->easy);
	}
	free_sequence(h);
	if (h->multi)
		curl_multi_cleanup(h->multi); /* its sockets' watches go with CURL_POLL_REMOVE */
	if (h->timer)
		event_free(h->timer);
	curl_slist_free_all(h->headers);
	free(h);
}

int fc_http_run(struct fc_http *h, const struct fc_request *reqs, size_t n, unsigned timeout_ms, fc_http_done done,
		void *arg)
{
	if (h->n || h->easy)
		return -EBUSY;
	if (n == 0 || n > FC_REQUESTS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		h->reqs[i] = reqs[i];
		h->reqs[i].body = reqs[i].body ? strdup(reqs[i].body) : NULL;
		if (reqs[i].body && !h->reqs[i].body) {
			h->n = i;
			free_sequence(h);
			return -ENOMEM;
		}
	}
	h->n = n;
	h->next = 0;
	h->timeout_ms = timeout_ms;
	h->done = done;
	h->arg = arg;
	int rc = start_next(h);
	if (rc < 0) {
		h->done = NULL;
		free_sequence(h);
	}
	return rc;
}
