/* The DPDK surface Tandem binds: DPDK's public headers, plus one-line wrappers for the static inline
 * functions we call (bindgen cannot link to static inline functions). Reviewed by hand; keep it small. */
#ifndef TANDEM_DPDK_SHIM_H
#define TANDEM_DPDK_SHIM_H

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <rte_version.h>

uint16_t tandem_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t tandem_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *tandem_pktmbuf_alloc(struct rte_mempool *pool);
void tandem_pktmbuf_free(struct rte_mbuf *m);
char *tandem_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int tandem_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int tandem_errno(void);
unsigned tandem_lcore_id(void);

#endif
