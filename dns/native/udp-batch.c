/* Batched UDP for the DNS server: recvmmsg/sendmmsg on an already-bound socket, one JS call per
 * batch of up to 64 datagrams (see README.md). Linux only; single-threaded (the Node event loop);
 * no callbacks after close(). Memory shared with JS is three ArrayBuffers owned by V8. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64
#define SLOT 65536          /* bytes per datagram slot, in and out: every UDP payload fits */
#define PEER 80             /* per slot: sockaddr (28), socklen (u32 at 28), text address (32..79) */
#define CTRL_IN (BATCH * PEER)            /* u32 in-lengths */
#define CTRL_FLAGS (CTRL_IN + BATCH * 4)  /* u32 flags: 1 = truncated */
#define CTRL_OUT (CTRL_FLAGS + BATCH * 4) /* u32 out-lengths, written by JS (0 = no reply) */
#define CTRL_SIZE (CTRL_OUT + BATCH * 4)
#define MAX_ROUNDS 8        /* batches per wake-up before yielding to the loop */

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int closed;
  int pending_from, pending_count; /* replies waiting for POLLOUT (reading paused meanwhile) */
  uint8_t *in, *out, *ctrl;
  napi_ref in_ref, out_ref, ctrl_ref, cb_ref, self_ref;
  napi_async_context async;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage names[BATCH];
  double received, sent, dropped;
} batch_t;

#define CHECK(env, call)                                               \
  do {                                                                 \
    if ((call) != napi_ok) {                                           \
      napi_throw_error((env), "native-failed", "udp-batch: " #call);   \
      return NULL;                                                     \
    }                                                                  \
  } while (0)

static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Text form of a peer address (as Node's rinfo.address: inet_ntop, IPv6 zone as %ifname). */
static void peer_text(const struct sockaddr_storage *ss, char *dst, size_t cap) {
  dst[0] = 0;
  if (ss->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, dst, cap);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    if (!inet_ntop(AF_INET6, &s6->sin6_addr, dst, cap)) return;
    char ifn[IF_NAMESIZE];
    size_t n = strlen(dst);
    if (s6->sin6_scope_id && if_indextoname(s6->sin6_scope_id, ifn) && n + 1 + strlen(ifn) < cap) {
      dst[n] = '%';
      strcpy(dst + n + 1, ifn);
    }
  }
}

/* Receive one batch into the slots; returns the count (0: nothing, or an error). */
/* Drop what a batch holds of JavaScript: its references and its async context. */
static void release_js(napi_env env, batch_t *b) {
  napi_delete_reference(env, b->cb_ref);
  napi_delete_reference(env, b->self_ref);
  napi_delete_reference(env, b->in_ref);
  napi_delete_reference(env, b->out_ref);
  napi_delete_reference(env, b->ctrl_ref);
  napi_async_destroy(env, b->async);
}

static int receive(batch_t *b) {
  for (int i = 0; i < BATCH; i++) {
    b->iov[i].iov_base = b->in + (size_t)i * SLOT;
    b->iov[i].iov_len = SLOT;
    memset(&b->msgs[i].msg_hdr, 0, sizeof(struct msghdr));
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
    b->msgs[i].msg_hdr.msg_name = &b->names[i];
    b->msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
  }
  int n;
  do n = recvmmsg(b->fd, b->msgs, BATCH, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  for (int i = 0; i < n; i++) {
    uint8_t *peer = b->ctrl + (size_t)i * PEER;
    socklen_t len = b->msgs[i].msg_hdr.msg_namelen;
    if (len > 28) len = 28;
    memset(peer, 0, PEER);
    memcpy(peer, &b->names[i], len);
    put_u32(peer + 28, len);
    peer_text(&b->names[i], (char *)peer + 32, PEER - 32);
    uint32_t got = b->msgs[i].msg_len;
    int trunc = (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    put_u32(b->ctrl + CTRL_IN + 4 * i, got > SLOT ? SLOT : got);
    put_u32(b->ctrl + CTRL_FLAGS + 4 * i, trunc ? 1 : 0);
    put_u32(b->ctrl + CTRL_OUT + 4 * i, 0);
  }
  b->received += n;
  return n;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void set_events(batch_t *b, int events) {
  if (!b->closed) uv_poll_start(&b->poll, events, on_poll);
}

/* Send replies [from, from+count) with sendmmsg; on EAGAIN keep the rest and wait for POLLOUT. */
static void flush(batch_t *b, int from, int count);

/* Build the message list of slots with a reply (bounds-checked lengths from JS). */
static int gather(batch_t *b, int count) {
  int m = 0;
  for (int i = 0; i < count; i++) {
    uint32_t len = get_u32(b->ctrl + CTRL_OUT + 4 * i);
    uint32_t nl = get_u32(b->ctrl + (size_t)i * PEER + 28);
    if (len == 0 || len > SLOT || nl == 0 || nl > 28) continue;
    b->iov[m].iov_base = b->out + (size_t)i * SLOT;
    b->iov[m].iov_len = len;
    memset(&b->msgs[m].msg_hdr, 0, sizeof(struct msghdr));
    b->msgs[m].msg_hdr.msg_iov = &b->iov[m];
    b->msgs[m].msg_hdr.msg_iovlen = 1;
    b->msgs[m].msg_hdr.msg_name = b->ctrl + (size_t)i * PEER;
    b->msgs[m].msg_hdr.msg_namelen = nl;
    m++;
  }
  return m;
}

static void flush(batch_t *b, int from, int count) {
  int i = from, end = from + count;
  while (i < end) {
    int r = sendmmsg(b->fd, b->msgs + i, (unsigned)(end - i), MSG_DONTWAIT);
    if (r > 0) {
      i += r;
      b->sent += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      b->pending_from = i;
      b->pending_count = end - i;
      set_events(b, UV_WRITABLE);
      return;
    } else {
      i++; /* this message cannot be sent (no route, bad peer…): drop it, go on */
      b->dropped++;
    }
  }
  b->pending_count = 0;
}

/* Hand a batch to JS; returns 0 when the handle was closed meanwhile. */
static int call_js(batch_t *b, int n) {
  napi_env env = b->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  napi_value cb, self, arg, result;
  if (napi_get_reference_value(env, b->cb_ref, &cb) == napi_ok && napi_get_reference_value(env, b->self_ref, &self) == napi_ok &&
      napi_create_uint32(env, (uint32_t)n, &arg) == napi_ok) {
    if (napi_make_callback(env, b->async, self, cb, 1, &arg, &result) == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
  return !b->closed;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  batch_t *b = h->data;
  if (b->closed || status < 0) return;
  if (events & UV_WRITABLE) {
    flush(b, b->pending_from, b->pending_count);
    if (b->pending_count == 0) set_events(b, UV_READABLE);
    return;
  }
  for (int round = 0; round < MAX_ROUNDS && b->pending_count == 0; round++) {
    int n = receive(b);
    if (n == 0) return;
    if (!call_js(b, n)) return;
    flush(b, 0, gather(b, n));
    if (n < BATCH) return;
  }
}

static void on_closed(uv_handle_t *h) {
  batch_t *b = h->data;
  close(b->fd);
  free(b);
}

static napi_value make_buffer(napi_env env, size_t size, uint8_t **data, napi_ref *ref) {
  napi_value ab;
  CHECK(env, napi_create_arraybuffer(env, size, (void **)data, &ab));
  CHECK(env, napi_create_reference(env, ab, 1, ref));
  return ab;
}

/* open(fd, onBatch) → { handle, in, out, ctrl }: watch a dup of the bound UDP socket fd. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res, handle, name, v;
  int32_t fd;
  napi_valuetype t;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "bad-argument", "open(fd, onBatch)");
    return NULL;
  }
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) {
    napi_throw_error(env, "bad-argument", "fd is not a UDP socket");
    return NULL;
  }
  batch_t *b = calloc(1, sizeof *b);
  if (!b) {
    napi_throw_error(env, "native-failed", "out of memory");
    return NULL;
  }
  b->env = env;
  b->fd = -1;
  /* Every JS object first (a failure there leaves no libuv handle behind), then the poll. */
  CHECK(env, napi_create_object(env, &res));
  CHECK(env, napi_create_external(env, b, NULL, NULL, &handle));
  CHECK(env, napi_set_named_property(env, res, "handle", handle));
  CHECK(env, napi_set_named_property(env, res, "in", make_buffer(env, (size_t)BATCH * SLOT, &b->in, &b->in_ref)));
  CHECK(env, napi_set_named_property(env, res, "out", make_buffer(env, (size_t)BATCH * SLOT, &b->out, &b->out_ref)));
  CHECK(env, napi_set_named_property(env, res, "ctrl", make_buffer(env, CTRL_SIZE, &b->ctrl, &b->ctrl_ref)));
  CHECK(env, napi_create_uint32(env, BATCH, &v));
  CHECK(env, napi_set_named_property(env, res, "batch", v));
  CHECK(env, napi_create_string_utf8(env, "tsoverlay:udp-batch", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_async_init(env, NULL, name, &b->async));
  CHECK(env, napi_create_reference(env, argv[1], 1, &b->cb_ref));
  CHECK(env, napi_create_reference(env, res, 1, &b->self_ref));
  uv_loop_t *loop;
  b->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (b->fd < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &b->poll, b->fd) != 0) {
    if (b->fd >= 0) close(b->fd);
    release_js(env, b);
    free(b);
    napi_throw_error(env, "native-failed", "cannot watch the socket");
    return NULL;
  }
  b->poll.data = b;
  uv_poll_start(&b->poll, UV_READABLE, on_poll);
  return res;
}

static batch_t *unwrap(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* sendTo(handle, bytes, peer) → 0 or an errno: one reply, peer = the slot's first 32 bytes. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], res;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  batch_t *b = argc == 3 ? unwrap(env, argv[0]) : NULL;
  void *data = NULL, *peer = NULL;
  size_t len = 0, plen = 0;
  if (!b || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || napi_get_buffer_info(env, argv[2], &peer, &plen) != napi_ok || plen < 32) {
    napi_throw_type_error(env, "bad-argument", "sendTo(handle, Buffer, peer Buffer)");
    return NULL;
  }
  uint32_t nl = get_u32((uint8_t *)peer + 28);
  int err = EBADF;
  if (!b->closed) {
    err = 0;
    if (nl > 28 || sendto(b->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)peer, nl) < 0) err = nl > 28 ? EINVAL : errno;
    if (err == 0) b->sent++;
    else b->dropped++;
  }
  CHECK(env, napi_create_int32(env, err, &res));
  return res;
}

/* stats(handle) → [received, sent, dropped]. */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res, v;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  batch_t *b = argc == 1 ? unwrap(env, argv[0]) : NULL;
  if (!b) {
    napi_throw_type_error(env, "bad-argument", "stats(handle)");
    return NULL;
  }
  CHECK(env, napi_create_array_with_length(env, 3, &res));
  double f[3] = {b->received, b->sent, b->dropped};
  for (uint32_t i = 0; i < 3; i++) {
    CHECK(env, napi_create_double(env, f[i], &v));
    CHECK(env, napi_set_element(env, res, i, v));
  }
  return res;
}

/* close(handle): stop watching; no callback after this returns; the dup'd fd closes with the handle. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  batch_t *b = argc == 1 ? unwrap(env, argv[0]) : NULL;
  if (!b) {
    napi_throw_type_error(env, "bad-argument", "close(handle)");
    return NULL;
  }
  if (b->closed) return NULL;
  b->closed = 1;
  uv_poll_stop(&b->poll);
  release_js(env, b);
  uv_close((uv_handle_t *)&b->poll, on_closed);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"sendTo", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  napi_value v;
  if (napi_create_uint32(env, SLOT, &v) == napi_ok) napi_set_named_property(env, exports, "slot", v);
  if (napi_create_uint32(env, PEER, &v) == napi_ok) napi_set_named_property(env, exports, "peer", v);
  return exports;
}
