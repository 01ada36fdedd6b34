/*
 * Open-loop gRPC load over one HTTP/2 connection, for bench/extauthz-check.ts: the stand-in for
 * Envoy's C++ ext_authz client, with no garbage collector and microsecond pacing.
 *
 *   h2grpc HOST PORT RATE PATH REQFILE OUTFILE [TIMEOUT_MS]
 *
 * REQFILE holds the serialized request messages, each as a 4-byte big-endian length and the
 * bytes. Request i is due at start + i/RATE; it is written when due (HEADERS with HPACK literals,
 * no Huffman, no dynamic table; DATA with the length-prefixed message) and timed from the write to
 * the end of its response. OUTFILE gets one line per request, in order:
 *   <lag µs> <latency µs> <result>
 * and a last line `# cpu_us <user + system CPU of this process>`.
 * lag: how late the write was against the schedule; result: 0 a gRPC message arrived whose first
 * field (a google.rpc.Status, as CheckResponse has) carries code 0 or none; 1 another code;
 * 2 no message (trailers-only error, RST_STREAM, GOAWAY or timeout).
 * Responses are framed, not HPACK-decoded (a gRPC error arrives trailers-only, without DATA).
 * With H2GRPC_AUTHORIZATION set in the environment, every request carries it as its
 * `authorization` header (the proxy's node token, as Envoy's `initial_metadata` sends it; the
 * environment keeps it off the command line).
 * Flow control: the server gets a 1 GiB window; the client honours the server's windows and
 * SETTINGS_MAX_FRAME_SIZE, acknowledges SETTINGS and PING.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define WINDOW (1u << 30)

typedef struct {
  uint8_t *msg;
  uint32_t len;
  int64_t due, sent, done;
  int result;            /* -1 pending */
  uint8_t *resp;         /* collected DATA payload */
  uint32_t resp_len, resp_cap;
  int ending;            /* HEADERS with END_STREAM seen, waiting for END_HEADERS */
  uint32_t pending_off;  /* bytes of the framed message already sent */
  int64_t send_window;
} req_t;

static req_t *reqs;
static size_t nreq;
static int fd;
static int64_t conn_send_window = 65535, peer_initial_window = 65535;
static uint32_t peer_max_frame = 16384;
static uint64_t received_since_update;
static uint8_t *out;
static size_t out_len, out_cap;
static size_t *blocked;  /* request indices whose DATA waits for window, in order */
static size_t blocked_head, blocked_tail;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void put(const void *p, size_t n) {
  if (out_len + n > out_cap) {
    out_cap = (out_len + n) * 2;
    out = realloc(out, out_cap);
    if (!out) die("realloc");
  }
  memcpy(out + out_len, p, n);
  out_len += n;
}

static void frame_header(uint32_t len, uint8_t type, uint8_t flags, uint32_t stream) {
  uint8_t h[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                  (uint8_t)(stream >> 24 & 0x7f), (uint8_t)(stream >> 16), (uint8_t)(stream >> 8), (uint8_t)stream};
  put(h, 9);
}

static void flush_out(void) {
  size_t off = 0;
  while (off < out_len) {
    ssize_t n = write(fd, out + off, out_len - off);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue; /* loopback: spin briefly */
      die("write");
    }
    off += (size_t)n;
  }
  out_len = 0;
}

/* HPACK: literal without indexing; `idx` > 0 names a static-table entry, else a new name. */
static void hpack_int(uint8_t *b, size_t *n, uint8_t first, int prefix, uint32_t v) {
  uint32_t max = (1u << prefix) - 1;
  if (v < max) { b[(*n)++] = first | (uint8_t)v; return; }
  b[(*n)++] = first | (uint8_t)max;
  v -= max;
  while (v >= 128) { b[(*n)++] = (uint8_t)(v % 128 + 128); v /= 128; }
  b[(*n)++] = (uint8_t)v;
}
static void hpack_str(uint8_t *b, size_t *n, const char *s) {
  size_t l = strlen(s);
  hpack_int(b, n, 0, 7, (uint32_t)l);
  memcpy(b + *n, s, l);
  *n += l;
}
static void hpack_field(uint8_t *b, size_t *n, int idx, const char *name, const char *value) {
  if (idx > 0) hpack_int(b, n, 0x00, 4, (uint32_t)idx);
  else { b[(*n)++] = 0x00; hpack_str(b, n, name); }
  hpack_str(b, n, value);
}

static uint8_t header_block[1024];
static size_t header_len;

static void flush_data(void) {
  while (blocked_head < blocked_tail) {
    size_t i = blocked[blocked_head];
    req_t *r = &reqs[i];
    uint32_t total = r->len + 5;
    uint32_t left = total - r->pending_off;
    int64_t n = left;
    if (n > conn_send_window) n = conn_send_window;
    if (n > r->send_window) n = r->send_window;
    if (n > peer_max_frame) n = peer_max_frame;
    if (n <= 0) break;
    int last = (uint32_t)n == left;
    frame_header((uint32_t)n, 0x0, last ? 0x1 : 0, (uint32_t)(2 * i + 1));
    uint32_t off = r->pending_off;
    if (off < 5) {
      uint8_t prefix[5] = {0, (uint8_t)(r->len >> 24), (uint8_t)(r->len >> 16), (uint8_t)(r->len >> 8), (uint8_t)r->len};
      uint32_t k = 5 - off < (uint32_t)n ? 5 - off : (uint32_t)n;
      put(prefix + off, k);
      if ((uint32_t)n > k) put(r->msg, (uint32_t)n - k);
    } else {
      put(r->msg + (off - 5), (uint32_t)n);
    }
    r->pending_off += (uint32_t)n;
    conn_send_window -= n;
    r->send_window -= n;
    if (last) blocked_head++;
  }
}

static void send_request(size_t i, int64_t t) {
  req_t *r = &reqs[i];
  r->sent = t;
  r->send_window = peer_initial_window;
  frame_header((uint32_t)header_len, 0x1, 0x4, (uint32_t)(2 * i + 1));
  put(header_block, header_len);
  blocked[blocked_tail++] = i;
  flush_data();
}

static void finish(size_t i, int64_t t, int failed) {
  req_t *r = &reqs[i];
  if (r->result >= 0) return;
  r->done = t;
  if (failed || r->resp_len < 5) { r->result = 2; return; }
  /* First field of the message: tag 0x0a (field 1, length-delimited) = status; inside it, tag 0x08 = code. */
  const uint8_t *m = r->resp + 5;
  uint32_t ml = r->resp_len - 5, code = 0;
  if (ml >= 2 && m[0] == 0x0a) {
    uint32_t sl = m[1]; /* status messages here are short: one-byte length */
    if (sl >= 2 && m[2] == 0x08) {
      uint32_t shift = 0; size_t k = 3;
      code = 0;
      while (k < 2 + sl + 1 && k < ml) { code |= (uint32_t)(m[k] & 0x7f) << shift; if (!(m[k++] & 0x80)) break; shift += 7; }
    }
  }
  r->result = code == 0 ? 0 : 1;
}

static uint8_t *inbuf;
static size_t in_len, in_cap;
static size_t done_count;

static void on_frames(int64_t t) {
  size_t off = 0;
  while (in_len - off >= 9) {
    uint32_t len = (uint32_t)inbuf[off] << 16 | (uint32_t)inbuf[off + 1] << 8 | inbuf[off + 2];
    if (in_len - off < 9 + len) break;
    uint8_t type = inbuf[off + 3], flags = inbuf[off + 4];
    uint32_t stream = ((uint32_t)inbuf[off + 5] << 24 | (uint32_t)inbuf[off + 6] << 16 | (uint32_t)inbuf[off + 7] << 8 | inbuf[off + 8]) & 0x7fffffff;
    uint8_t *p = inbuf + off + 9;
    off += 9 + len;
    size_t idx = stream ? (stream - 1) / 2 : 0;
    int mine = stream && (stream & 1) && idx < nreq && reqs[idx].sent && reqs[idx].result < 0;
    switch (type) {
      case 0x0: { /* DATA */
        received_since_update += len;
        uint8_t *d = p; uint32_t dl = len;
        if (flags & 0x8) { uint8_t pad = p[0]; d = p + 1; dl = len - 1 - pad; }
        if (mine) {
          req_t *r = &reqs[idx];
          if (r->resp_len + dl > r->resp_cap) { r->resp_cap = (r->resp_len + dl) * 2; r->resp = realloc(r->resp, r->resp_cap); if (!r->resp) die("realloc"); }
          memcpy(r->resp + r->resp_len, d, dl);
          r->resp_len += dl;
          if (flags & 0x1) { finish(idx, t, 1); done_count++; }
        }
        break;
      }
      case 0x1:   /* HEADERS */
      case 0x9: { /* CONTINUATION */
        if (mine) {
          if (type == 0x1 && (flags & 0x1)) reqs[idx].ending = 1;
          if ((flags & 0x4) && reqs[idx].ending) { finish(idx, t, 0); done_count++; }
        }
        break;
      }
      case 0x3: /* RST_STREAM */
        if (mine) { finish(idx, t, 1); done_count++; }
        break;
      case 0x4: /* SETTINGS */
        if (!(flags & 0x1)) {
          for (uint32_t k = 0; k + 6 <= len; k += 6) {
            uint16_t id = (uint16_t)(p[k] << 8 | p[k + 1]);
            uint32_t v = (uint32_t)p[k + 2] << 24 | (uint32_t)p[k + 3] << 16 | (uint32_t)p[k + 4] << 8 | p[k + 5];
            if (id == 0x4) {
              int64_t delta = (int64_t)v - peer_initial_window;
              peer_initial_window = v;
              for (size_t j = blocked_head; j < blocked_tail; j++) reqs[blocked[j]].send_window += delta;
            } else if (id == 0x5) peer_max_frame = v;
          }
          frame_header(0, 0x4, 0x1, 0);
        }
        break;
      case 0x6: /* PING */
        if (!(flags & 0x1)) { frame_header(8, 0x6, 0x1, 0); put(p, 8); }
        break;
      case 0x7: /* GOAWAY */
        fprintf(stderr, "h2grpc: GOAWAY\n");
        for (size_t j = 0; j < nreq; j++) if (reqs[j].sent && reqs[j].result < 0) { finish(j, t, 1); done_count++; }
        break;
      case 0x8: { /* WINDOW_UPDATE */
        uint32_t inc = ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) & 0x7fffffff;
        if (stream == 0) conn_send_window += inc;
        else if (idx < nreq) reqs[idx].send_window += inc;
        break;
      }
      default:
        break;
    }
  }
  memmove(inbuf, inbuf + off, in_len - off);
  in_len -= off;
  if (received_since_update > WINDOW / 2) {
    uint8_t b[4] = {(uint8_t)(received_since_update >> 24), (uint8_t)(received_since_update >> 16), (uint8_t)(received_since_update >> 8), (uint8_t)received_since_update};
    frame_header(4, 0x8, 0, 0);
    put(b, 4);
    received_since_update = 0;
  }
  flush_data();
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: h2grpc HOST PORT RATE PATH REQFILE OUTFILE [TIMEOUT_MS]\n");
    return 2;
  }
  const char *host = argv[1], *port = argv[2], *path = argv[4];
  double rate = atof(argv[3]);
  int64_t timeout_ns = (argc > 7 ? atoll(argv[7]) : 2000) * 1000000LL;

  FILE *f = fopen(argv[5], "rb");
  if (!f) die("REQFILE");
  size_t cap = 1024;
  reqs = calloc(cap, sizeof *reqs);
  uint8_t lb[4];
  while (fread(lb, 1, 4, f) == 4) {
    uint32_t l = (uint32_t)lb[0] << 24 | (uint32_t)lb[1] << 16 | (uint32_t)lb[2] << 8 | lb[3];
    if (nreq == cap) { cap *= 2; reqs = realloc(reqs, cap * sizeof *reqs); if (!reqs) die("realloc"); }
    memset(&reqs[nreq], 0, sizeof *reqs);
    reqs[nreq].msg = malloc(l ? l : 1);
    reqs[nreq].len = l;
    reqs[nreq].result = -1;
    if (l && fread(reqs[nreq].msg, 1, l, f) != l) die("REQFILE truncated");
    nreq++;
  }
  fclose(f);
  blocked = calloc(nreq + 1, sizeof *blocked);

  struct addrinfo hints = {0}, *ai;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &ai) != 0) die("getaddrinfo");
  fd = socket(ai->ai_family, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) die("connect");
  freeaddrinfo(ai);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  char authority[300];
  snprintf(authority, sizeof authority, "%s:%s", host, port);
  char timeout[32];
  snprintf(timeout, sizeof timeout, "%lldm", (long long)(timeout_ns / 1000000));
  hpack_field(header_block, &header_len, 2, NULL, "POST");
  hpack_field(header_block, &header_len, 6, NULL, "http");
  hpack_field(header_block, &header_len, 4, NULL, path);
  hpack_field(header_block, &header_len, 1, NULL, authority);
  hpack_field(header_block, &header_len, 31, NULL, "application/grpc");
  hpack_field(header_block, &header_len, 0, "te", "trailers");
  hpack_field(header_block, &header_len, 0, "grpc-timeout", timeout);
  const char *authorization = getenv("H2GRPC_AUTHORIZATION");
  if (authorization) {
    if (strlen(authorization) > 512) { fprintf(stderr, "H2GRPC_AUTHORIZATION: at most 512 bytes\n"); return 2; }
    hpack_field(header_block, &header_len, 23, NULL, authorization);
  }

  /* Preface, SETTINGS (ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 1 GiB, HEADER_TABLE_SIZE 0), connection window. */
  put("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
  uint8_t settings[18] = {0, 2, 0, 0, 0, 0, 0, 4, (uint8_t)(WINDOW >> 24), (uint8_t)(WINDOW >> 16), (uint8_t)(WINDOW >> 8), (uint8_t)WINDOW, 0, 1, 0, 0, 0, 0};
  frame_header(18, 0x4, 0, 0);
  put(settings, 18);
  uint32_t inc = WINDOW - 65535;
  uint8_t wu[4] = {(uint8_t)(inc >> 24), (uint8_t)(inc >> 16), (uint8_t)(inc >> 8), (uint8_t)inc};
  frame_header(4, 0x8, 0, 0);
  put(wu, 4);
  flush_out();

  int ep = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  ev.data.fd = tfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);

  in_cap = 1 << 20;
  inbuf = malloc(in_cap);
  int64_t start = now_ns() + 2000000;
  int64_t interval = (int64_t)(1e9 / rate);
  for (size_t i = 0; i < nreq; i++) reqs[i].due = start + (int64_t)i * interval;
  size_t next = 0;
  int64_t last_due = nreq ? reqs[nreq - 1].due : start;

  while (done_count < nreq) {
    int64_t t = now_ns();
    while (next < nreq && reqs[next].due <= t) send_request(next++, t);
    if (out_len) flush_out();
    /* Deadlines. */
    if (t > last_due + timeout_ns + 1000000000LL) {
      for (size_t j = 0; j < nreq; j++) if (reqs[j].result < 0) { reqs[j].result = 2; reqs[j].done = t; done_count++; }
      break;
    }
    int wait_ms = 100;
    if (next < nreq) {
      int64_t d = reqs[next].due - now_ns();
      if (d <= 0) continue;
      struct itimerspec its = {0};
      its.it_value.tv_sec = reqs[next].due / 1000000000;
      its.it_value.tv_nsec = reqs[next].due % 1000000000;
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
      wait_ms = -1;
    }
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, wait_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    int64_t now = now_ns();
    for (int k = 0; k < n; k++) {
      if (evs[k].data.fd == tfd) {
        uint64_t x;
        ssize_t rd = read(tfd, &x, sizeof x);
        (void)rd;
      } else {
        for (;;) {
          if (in_cap - in_len < 65536) { in_cap *= 2; inbuf = realloc(inbuf, in_cap); if (!inbuf) die("realloc"); }
          ssize_t r = recv(fd, inbuf + in_len, in_cap - in_len, MSG_DONTWAIT);
          if (r > 0) { in_len += (size_t)r; continue; }
          if (r == 0) { fprintf(stderr, "h2grpc: connection closed\n"); for (size_t j = 0; j < nreq; j++) if (reqs[j].result < 0) { reqs[j].result = 2; reqs[j].done = now; done_count++; } goto report; }
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          die("recv");
        }
        on_frames(now);
      }
    }
    if (out_len) flush_out();
  }

report:;
  FILE *o = fopen(argv[6], "w");
  if (!o) die("OUTFILE");
  for (size_t i = 0; i < nreq; i++) {
    req_t *r = &reqs[i];
    long long lag = r->sent ? (r->sent - r->due) / 1000 : -1;
    long long lat = r->result >= 0 && r->result < 2 ? (r->done - r->sent) / 1000 : -1;
    fprintf(o, "%lld %lld %d\n", lag, lat, r->result < 0 ? 2 : r->result);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  fprintf(o, "# cpu_us %lld\n", (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  fclose(o);
  close(fd);
  return 0;
}
