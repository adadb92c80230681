/* nf_tables through libnftnl (see nft.h and docs/networking.md). Every change is one
 * NFNL_MSG_BATCH_BEGIN/END batch, so the kernel applies it whole or not at all; each message
 * asks for an ACK and the first error the kernel reports is returned as -errno. The rules'
 * bytecode is what `nft` itself generates for the same rules (checked with --debug=netlink). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

#include "helpers/netd/nft.h"

struct nft {
	struct mnl_socket *nl;
	uint32_t portid, seq;
};

/* nft's datatype ids (nftables' include/datatype.h); a concatenation's type is the ids
 * shifted together, 6 bits each. nft needs them to print the maps. */
#define TYPE_IPADDR	  7
#define TYPE_INET_SERVICE 13
#define TYPE_CONCAT(a, b) (((a) << 6) | (b))

#define VM_TABLE "fcvm"
#define NL_BUF	 16384 /* a receive buffer; MNL_SOCKET_BUFFER_SIZE is not a constant */

static struct nft *nft_wrap(struct mnl_socket *nl)
{
	struct nft *n;

	if (!nl)
		return NULL;
	/* An unbound socket (e.g. made in another namespace) gets its port id now. */
	if (mnl_socket_get_portid(nl) == 0 && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		mnl_socket_close(nl);
		return NULL;
	}
	n->nl = nl;
	n->portid = mnl_socket_get_portid(nl);
	n->seq = (uint32_t)time(NULL);
	return n;
}

struct nft *nft_open(void)
{
	return nft_wrap(mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC));
}

struct nft *nft_fdopen(int fd)
{
	struct mnl_socket *nl = mnl_socket_fdopen(fd);

	if (!nl)
		close(fd);
	return nft_wrap(nl);
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	mnl_socket_close(n->nl);
	free(n);
}

/* ---- batches ---- */

struct batch {
	struct nft *n;
	char *buf;
	struct mnl_nlmsg_batch *b;
	uint32_t first, nmsg; /* sequence numbers of the messages that expect an ACK */
	int err;	      /* a build error (-ENOMEM, -ENOBUFS), reported at send */
};

static int batch_start(struct batch *bt, struct nft *n, size_t size)
{
	memset(bt, 0, sizeof(*bt));
	bt->n = n;
	bt->buf = malloc(size);
	if (!bt->buf)
		return -ENOMEM;
	bt->b = mnl_nlmsg_batch_start(bt->buf, size);
	if (!bt->b) {
		free(bt->buf);
		return -ENOMEM;
	}
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), n->seq++);
	mnl_nlmsg_batch_next(bt->b);
	bt->first = n->seq;
	return 0;
}

static void batch_free(struct batch *bt)
{
	mnl_nlmsg_batch_stop(bt->b);
	free(bt->buf);
}

/* The header of the next message in the batch, with NLM_F_ACK. */
static struct nlmsghdr *batch_msg(struct batch *bt, uint16_t type, uint16_t flags)
{
	bt->nmsg++;
	return nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFPROTO_IPV4, flags | NLM_F_ACK,
				     bt->n->seq++);
}

static void batch_next(struct batch *bt)
{
	if (!mnl_nlmsg_batch_next(bt->b) && !bt->err)
		bt->err = -ENOBUFS; /* the buffer is sized for the worst case: should not happen */
}

/* The replies to [first, first + nmsg): one NLMSG_ERROR each (0 = ACK). The kernel handles
 * a batch synchronously in sendmsg, so every reply is queued when it returns. */
static int batch_replies(struct batch *bt)
{
	char buf[NL_BUF];
	uint32_t got = 0;
	int ret = 0;

	while (got < bt->nmsg) {
		ssize_t len = recv(mnl_socket_get_fd(bt->n->nl), buf, sizeof(buf), MSG_DONTWAIT);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			return ret ? ret : (errno == EAGAIN ? -EPROTO : -errno);
		int rest = (int)len;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; mnl_nlmsg_ok(h, rest); h = mnl_nlmsg_next(h, &rest)) {
			if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq - bt->first >= bt->nmsg)
				continue;
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			got++;
			if (e->error && !ret)
				ret = e->error;
		}
	}
	return ret;
}

static int batch_send(struct batch *bt)
{
	int ret = bt->err;

	if (!ret) {
		nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), bt->n->seq++);
		mnl_nlmsg_batch_next(bt->b);
		if (mnl_socket_sendto(bt->n->nl, mnl_nlmsg_batch_head(bt->b), mnl_nlmsg_batch_size(bt->b)) < 0)
			ret = -errno;
		else
			ret = batch_replies(bt);
	}
	batch_free(bt);
	return ret;
}

/* ---- plain requests (get, dump) ---- */

static int request(struct nft *n, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	char buf[NL_BUF];
	uint32_t seq = nlh->nlmsg_seq;
	int ret;

	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		ssize_t len = mnl_socket_recvfrom(n->nl, buf, sizeof(buf));
		if (len < 0 && errno == EINTR) {
			ret = MNL_CB_OK;
			continue;
		}
		if (len < 0)
			return -errno;
		errno = 0;
		ret = mnl_cb_run(buf, (size_t)len, seq, n->portid, cb, arg);
	} while (ret > 0);
	if (ret < 0)
		return errno ? -errno : -EPROTO;
	return 0;
}

static int table_exists(struct nft *n, const char *table)
{
	char buf[NL_BUF];
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_IPV4, NLM_F_ACK, n->seq++);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return request(n, nlh, NULL, NULL);
}

/* ---- objects ---- */

static void add_table(struct batch *bt, const char *name, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();

	if (!t) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_IPV4);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nftnl_table_nlmsg_build_payload(batch_msg(bt, NFT_MSG_NEWTABLE, NLM_F_CREATE | flags), t);
	nftnl_table_free(t);
	batch_next(bt);
}

static void add_chain(struct batch *bt, const char *table, const char *name, uint32_t hook, int32_t prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	if (!c) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_IPV4);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nftnl_chain_nlmsg_build_payload(batch_msg(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE), c);
	nftnl_chain_free(c);
	batch_next(bt);
}

/* The four maps; pub_<proto> is keyed by the port, pub_ip_<proto> by address . port. The
 * rules follow this order: an address-specific port wins over the same port on every address. */
static const struct pubmap {
	const char *name;
	uint8_t proto;
	bool ip;
	uint32_t id;
} pubmaps[] = {
    {"pub_ip_tcp", IPPROTO_TCP, true, 1},
    {"pub_tcp", IPPROTO_TCP, false, 2},
    {"pub_ip_udp", IPPROTO_UDP, true, 3},
    {"pub_udp", IPPROTO_UDP, false, 4},
};
#define NPUBMAPS (sizeof(pubmaps) / sizeof(pubmaps[0]))

static struct nftnl_set *set_named(const char *table, const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();

	if (!s)
		return NULL;
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	return s;
}

static void add_map(struct batch *bt, const char *table, const struct pubmap *m)
{
	struct nftnl_set *s = set_named(table, m->name);

	if (!s) {
		bt->err = -ENOMEM;
		return;
	}
	nftnl_set_set_u32(s, NFTNL_SET_ID, m->id);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE,
			  m->ip ? TYPE_CONCAT(TYPE_IPADDR, TYPE_INET_SERVICE) : TYPE_INET_SERVICE);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, m->ip ? 8 : 2); /* concatenated fields padded to 4 */
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, TYPE_CONCAT(TYPE_IPADDR, TYPE_INET_SERVICE));
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 8);
	nftnl_set_nlmsg_build_payload(batch_msg(bt, NFT_MSG_NEWSET, NLM_F_CREATE), s);
	nftnl_set_free(s);
	batch_next(bt);
}

/* ---- expressions: each appends to r; a failed allocation marks the rule bad ---- */

struct rule {
	struct nftnl_rule *r;
	bool bad;
};

static struct nftnl_expr *expr(struct rule *r, const char *name)
{
	struct nftnl_expr *e = r->bad ? NULL : nftnl_expr_alloc(name);

	if (!e)
		r->bad = true;
	return e;
}

static void e_add(struct rule *r, struct nftnl_expr *e)
{
	if (e)
		nftnl_rule_add_expr(r->r, e);
}

static void e_cmp(struct rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
	e_add(r, e);
}

static void e_meta(struct rule *r, uint32_t key)
{
	struct nftnl_expr *e = expr(r, "meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	e_add(r, e);
}

static void e_payload(struct rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg)
{
	struct nftnl_expr *e = expr(r, "payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
	e_add(r, e);
}

static void e_bitwise(struct rule *r, const void *mask, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "bitwise");
	static const uint8_t zero[16];

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, zero, len);
	}
	e_add(r, e);
}

/* `fib daddr type local` */
static void e_fib_local(struct rule *r)
{
	struct nftnl_expr *e = expr(r, "fib");
	uint32_t local = RTN_LOCAL;

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
	}
	e_add(r, e);
	e_cmp(r, NFT_CMP_EQ, &local, sizeof(local));
}

/* `iifname NAME` / `oifname NAME`: the whole zero-padded IFNAMSIZ name, as nft does */
static void e_ifname(struct rule *r, uint32_t key, const char *name)
{
	char buf[IFNAMSIZ] = {0};

	strncpy(buf, name, IFNAMSIZ - 1);
	e_meta(r, key);
	e_cmp(r, NFT_CMP_EQ, buf, IFNAMSIZ);
}

/* `ip saddr|daddr ADDR/PREFIX`: a byte-aligned prefix loads just its bytes, like nft */
static void e_ip_prefix(struct rule *r, uint32_t off, struct in_addr addr, unsigned prefix)
{
	uint32_t mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	uint32_t net = addr.s_addr & mask;

	if (prefix == 0)
		return;
	if (prefix % 8 == 0) {
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, prefix / 8, NFT_REG_1);
		e_cmp(r, NFT_CMP_EQ, &net, prefix / 8);
		return;
	}
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, off, 4, NFT_REG_1);
	e_bitwise(r, &mask, 4);
	e_cmp(r, NFT_CMP_EQ, &net, 4);
}

static void e_immediate_addr(struct rule *r, struct in_addr a)
{
	struct nftnl_expr *e = expr(r, "immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &a.s_addr, sizeof(a.s_addr));
	}
	e_add(r, e);
}

/* dnat to the address in reg 1 and, with proto, the port in reg 9 (NFT_REG32_01) */
static void e_dnat(struct rule *r, bool proto)
{
	struct nftnl_expr *e = expr(r, "nat");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		if (proto) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, NFT_REG_1);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_01);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, NFT_REG32_01);
			nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS,
					   NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
		}
	}
	e_add(r, e);
}

static void e_masq(struct rule *r)
{
	e_add(r, expr(r, "masq"));
}

/* `fib daddr type local dnat ip to [ip daddr .] PROTO dport map @MAP` */
static void e_pub_lookup(struct rule *r, const struct pubmap *m)
{
	struct nftnl_expr *e;

	e_fib_local(r);
	e_meta(r, NFT_META_L4PROTO);
	e_cmp(r, NFT_CMP_EQ, &m->proto, 1);
	if (m->ip)
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1);
	/* dport is at offset 2 of both the TCP and the UDP header */
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, m->ip ? NFT_REG32_01 : NFT_REG_1);
	e = expr(r, "lookup");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, m->name);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, m->id);
	}
	e_add(r, e);
	e_dnat(r, true);
}

static struct rule rule_new(const char *table, const char *chain)
{
	struct rule r = {nftnl_rule_alloc(), false};

	if (!r.r) {
		r.bad = true;
		return r;
	}
	nftnl_rule_set_u32(r.r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);
	nftnl_rule_set_str(r.r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r.r, NFTNL_RULE_CHAIN, chain);
	return r;
}

/* Appends the rule to the batch and frees it. */
static void rule_add(struct batch *bt, struct rule *r)
{
	if (r->bad) {
		bt->err = bt->err ? bt->err : -ENOMEM;
	} else {
		nftnl_rule_nlmsg_build_payload(batch_msg(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND), r->r);
		batch_next(bt);
	}
	if (r->r)
		nftnl_rule_free(r->r);
}

/* ---- the host's table ---- */

static void add_pub_rules(struct batch *bt, const char *table, const char *chain)
{
	for (size_t i = 0; i < NPUBMAPS; i++) {
		struct rule r = rule_new(table, chain);
		e_pub_lookup(&r, &pubmaps[i]);
		rule_add(bt, &r);
	}
}

int nft_host_ensure(struct nft *n, const char *table, struct in_addr pool, unsigned prefix)
{
	static const uint8_t fcvm[4] = {'f', 'c', 'v', 'm'}; /* `"fcvm*"`: a cmp on the prefix only */
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};
	struct batch bt;
	struct rule r;
	int ret;

	if (prefix > 32)
		return -EINVAL;
	ret = table_exists(n, table);
	if (ret != -ENOENT)
		return ret;
	ret = batch_start(&bt, n, 64 * 1024);
	if (ret)
		return ret;
	/* NLM_F_EXCL: if another process made the table meanwhile, the whole batch fails. */
	add_table(&bt, table, NLM_F_EXCL);
	for (size_t i = 0; i < NPUBMAPS; i++)
		add_map(&bt, table, &pubmaps[i]);
	add_chain(&bt, table, "prerouting", NF_INET_PRE_ROUTING, -100);
	add_chain(&bt, table, "output", NF_INET_LOCAL_OUT, -100);
	add_chain(&bt, table, "postrouting", NF_INET_POST_ROUTING, 100);
	add_pub_rules(&bt, table, "prerouting");
	add_pub_rules(&bt, table, "output");

	r = rule_new(table, "postrouting"); /* ip saddr 127.0.0.0/8 oifname "fcvm*" masquerade */
	e_ip_prefix(&r, 12, lo, 8);
	e_meta(&r, NFT_META_OIFNAME);
	e_cmp(&r, NFT_CMP_EQ, fcvm, sizeof(fcvm));
	e_masq(&r);
	rule_add(&bt, &r);

	r = rule_new(table, "postrouting"); /* ip saddr POOL oifname != "fcvm*" masquerade */
	e_ip_prefix(&r, 12, pool, prefix);
	e_meta(&r, NFT_META_OIFNAME);
	e_cmp(&r, NFT_CMP_NEQ, fcvm, sizeof(fcvm));
	e_masq(&r);
	rule_add(&bt, &r);

	ret = batch_send(&bt);
	return ret == -EEXIST ? 0 : ret;
}

int nft_host_delete(struct nft *n, const char *table)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct batch bt;
	int ret;

	if (!t)
		return -ENOMEM;
	ret = batch_start(&bt, n, 8192);
	if (ret) {
		nftnl_table_free(t);
		return ret;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_IPV4);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	nftnl_table_nlmsg_build_payload(batch_msg(&bt, NFT_MSG_DELTABLE, 0), t);
	nftnl_table_free(t);
	batch_next(&bt);
	return batch_send(&bt);
}

static const struct pubmap *pubmap_for(const struct pub_port *p)
{
	bool ip = p->host_ip.s_addr != htonl(INADDR_ANY);

	for (size_t i = 0; i < NPUBMAPS; i++)
		if (pubmaps[i].proto == p->proto && pubmaps[i].ip == ip)
			return &pubmaps[i];
	return NULL;
}

/* An element's key and data as the maps hold them: each field of a concatenation is padded
 * to 4 bytes, ports in network order. */
struct elem_bytes {
	uint8_t key[8], data[8];
	uint32_t klen;
};

static void elem_encode(struct elem_bytes *eb, const struct pub_port *p, const struct pubmap *m, struct in_addr vm_addr)
{
	uint16_t hport = htons(p->host_port), gport = htons(p->guest_port);

	memset(eb, 0, sizeof(*eb));
	if (m->ip) {
		memcpy(eb->key, &p->host_ip.s_addr, 4);
		memcpy(eb->key + 4, &hport, 2);
		eb->klen = 8;
	} else {
		memcpy(eb->key, &hport, 2);
		eb->klen = 2;
	}
	memcpy(eb->data, &vm_addr.s_addr, 4);
	memcpy(eb->data + 4, &gport, 2);
}

/* One NEWSETELEM / DELSETELEM message for p. */
static int add_port_msg(struct batch *bt, const char *table, const struct pub_port *p, struct in_addr vm_addr, bool add)
{
	const struct pubmap *m = pubmap_for(p);
	struct nftnl_set_elem *e;
	struct nftnl_set *s;
	struct elem_bytes eb;

	if (!m)
		return -EPROTONOSUPPORT;
	s = set_named(table, m->name);
	e = nftnl_set_elem_alloc();
	if (!s || !e) {
		nftnl_set_free(s);
		nftnl_set_elem_free(e);
		return -ENOMEM;
	}
	elem_encode(&eb, p, m, vm_addr);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, eb.key, eb.klen);
	if (add)
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, eb.data, sizeof(eb.data));
	nftnl_set_elem_add(s, e); /* s owns e now */
	nftnl_set_elems_nlmsg_build_payload(
	    batch_msg(bt, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, add ? NLM_F_CREATE | NLM_F_EXCL : 0), s);
	nftnl_set_free(s);
	batch_next(bt);
	return 0;
}

int nft_host_ports(struct nft *n, const char *table, const struct pub_port *p, size_t np, struct in_addr vm_addr,
		   bool add)
{
	struct batch bt;
	int ret;

	if (np == 0)
		return 0;
	ret = batch_start(&bt, n, 8192 + np * 512);
	if (ret)
		return ret;
	for (size_t i = 0; i < np && !ret; i++)
		ret = add_port_msg(&bt, table, &p[i], vm_addr, add);
	if (ret) {
		batch_free(&bt);
		return ret;
	}
	return batch_send(&bt);
}

/* ---- dump ---- */

static int elems_cb(const struct nlmsghdr *nlh, void *arg)
{
	return nftnl_set_elems_nlmsg_parse(nlh, arg) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

struct dump_ctx {
	const struct pubmap *m;
	int (*cb)(const struct pub_port *p, struct in_addr vm_addr, void *arg);
	void *arg;
	int ret;
};

static int dump_elem(struct nftnl_set_elem *e, void *arg)
{
	struct dump_ctx *d = arg;
	struct pub_port p = {.proto = d->m->proto};
	struct in_addr vm;
	uint32_t klen = 0, dlen = 0;
	const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
	const uint8_t *data = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);
	uint16_t port;

	if (!key || !data || klen < (d->m->ip ? 6u : 2u) || dlen < 6)
		return 0; /* not one of ours: skip */
	if (d->m->ip)
		memcpy(&p.host_ip.s_addr, key, 4);
	memcpy(&port, key + (d->m->ip ? 4 : 0), 2);
	p.host_port = ntohs(port);
	memcpy(&vm.s_addr, data, 4);
	memcpy(&port, data + 4, 2);
	p.guest_port = ntohs(port);
	d->ret = d->cb(&p, vm, d->arg);
	return d->ret ? -1 : 0; /* a non-zero return stops nftnl_set_elem_foreach */
}

static int dump_map(struct nft *n, const char *table, struct dump_ctx *d)
{
	char buf[NL_BUF];
	struct nftnl_set *s = set_named(table, d->m->name);
	struct nlmsghdr *nlh;
	int ret;

	if (!s)
		return -ENOMEM;
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_IPV4, NLM_F_DUMP | NLM_F_ACK, n->seq++);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	ret = request(n, nlh, elems_cb, s);
	if (!ret) {
		d->ret = 0;
		nftnl_set_elem_foreach(s, dump_elem, d);
		ret = d->ret;
	}
	nftnl_set_free(s);
	return ret;
}

int nft_host_port_dump(struct nft *n, const char *table,
		       int (*cb)(const struct pub_port *p, struct in_addr vm_addr, void *arg), void *arg)
{
	struct dump_ctx d = {.cb = cb, .arg = arg};

	for (size_t i = 0; i < NPUBMAPS; i++) {
		d.m = &pubmaps[i];
		int ret = dump_map(n, table, &d);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- the VM's table ---- */

int nft_vm_table(struct nft *n, const char *uplink, const char *tap, struct in_addr guest, bool loopback)
{
	struct in_addr lo = {htonl(INADDR_LOOPBACK)};
	struct batch bt;
	struct rule r;
	int ret;

	if (strlen(uplink) >= IFNAMSIZ || strlen(tap) >= IFNAMSIZ)
		return -EINVAL;
	ret = batch_start(&bt, n, 32 * 1024);
	if (ret)
		return ret;
	/* NLM_F_EXCL: a second call fails with -EEXIST rather than doubling the rules. */
	add_table(&bt, VM_TABLE, NLM_F_EXCL);
	add_chain(&bt, VM_TABLE, "prerouting", NF_INET_PRE_ROUTING, -100);
	if (loopback)
		add_chain(&bt, VM_TABLE, "output", NF_INET_LOCAL_OUT, -100);
	add_chain(&bt, VM_TABLE, "postrouting", NF_INET_POST_ROUTING, 100);

	r = rule_new(VM_TABLE, "prerouting"); /* iifname UPLINK dnat ip to GUEST */
	e_ifname(&r, NFT_META_IIFNAME, uplink);
	e_immediate_addr(&r, guest);
	e_dnat(&r, false);
	rule_add(&bt, &r);

	if (loopback) {
		r = rule_new(VM_TABLE, "output"); /* ip daddr 127.0.0.1 dnat ip to GUEST */
		e_ip_prefix(&r, 16, lo, 32);
		e_immediate_addr(&r, guest);
		e_dnat(&r, false);
		rule_add(&bt, &r);
	}

	r = rule_new(VM_TABLE, "postrouting"); /* oifname UPLINK masquerade */
	e_ifname(&r, NFT_META_OIFNAME, uplink);
	e_masq(&r);
	rule_add(&bt, &r);

	if (loopback) {
		r = rule_new(VM_TABLE, "postrouting"); /* ip saddr 127.0.0.0/8 oifname TAP masquerade */
		e_ip_prefix(&r, 12, lo, 8);
		e_ifname(&r, NFT_META_OIFNAME, tap);
		e_masq(&r);
		rule_add(&bt, &r);
	}
	return batch_send(&bt);
}
