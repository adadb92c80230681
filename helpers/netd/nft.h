/* nf_tables through libnftnl: fcvm's tables, built and changed in atomic batches.
 * docs/networking.md shows each table in nft syntax; the rule count a packet walks is the
 * same whatever the number of VMs (per-VM state lives in map elements).
 * Every call returns 0 or -errno (the kernel's), never exits. */
#ifndef FCVM_NETD_NFT_H
#define FCVM_NETD_NFT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ports.h"

struct nft;

struct nft *nft_open(void);	/* NETLINK_NETFILTER in the caller's network namespace */
struct nft *nft_fdopen(int fd); /* an already made socket (vmns); takes ownership */
void nft_close(struct nft *n);

/* ---- the host's table `ip <table>` (bridged mode) ---- */
/* Creates the table with its maps, chains and rules in one batch when it does not exist;
 * does nothing when it does. pool/prefix: the VM address pool (egress masquerade). */
int nft_host_ensure(struct nft *n, const char *table, struct in_addr pool, unsigned prefix);
int nft_host_delete(struct nft *n, const char *table); /* -ENOENT if absent */
/* Add (or delete) the map elements of ports, each DNATing to vm_addr:guest_port, in one batch.
 * Adding an element whose key exists fails the whole batch with -EEXIST. */
int nft_host_ports(struct nft *n, const char *table, const struct pub_port *p, size_t np, struct in_addr vm_addr,
		   bool add);
/* Every published port in the table, with the address it DNATs to (one dump per map). A
 * non-zero return from cb stops the walk and is returned. */
int nft_host_port_dump(struct nft *n, const char *table,
		       int (*cb)(const struct pub_port *p, struct in_addr vm_addr, void *arg), void *arg);

/* ---- the table `ip fcvm` inside a VM's namespace ---- */
/* uplink: the interface towards the host ("fcvm0", the veth; rootless: "fcvmp0", pasta's tap);
 * tap: the VM's tap. Everything new arriving on uplink is DNATed to guest, everything leaving
 * by uplink is masqueraded. loopback: also DNAT what is sent to 127.0.0.1 in the namespace
 * (pasta's splice path for connections from the host's loopback) and masquerade its
 * 127.0.0.0/8 source on the way to the tap. One batch. */
int nft_vm_table(struct nft *n, const char *uplink, const char *tap, struct in_addr guest, bool loopback);

#endif
