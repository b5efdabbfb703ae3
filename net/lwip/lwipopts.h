/* keel's lwIP configuration: raw API only, NO_SYS=1, one poll() loop drives everything. */
#ifndef KEEL_LWIPOPTS_H
#define KEEL_LWIPOPTS_H

#define NO_SYS                      1
#define SYS_LIGHTWEIGHT_PROT        0
#define LWIP_SOCKET                 0
#define LWIP_NETCONN                0
#define LWIP_NETIF_API              0

#define LWIP_IPV4                   1
#define LWIP_IPV6                   1
#define LWIP_ARP                    1
/*
 * Packets to a LAN host whose MAC is not known yet wait for the ARP answer, several of them:
 * a guest's resolver sends its A and AAAA queries at once, and with one kept the other was lost
 * (the guest waited 5 s to ask again).
 */
#define ARP_QUEUEING                1
#define ARP_QUEUE_LEN               8
#define LWIP_ETHERNET               1
#define LWIP_ICMP                   1
#define LWIP_DHCP                   1
#define LWIP_AUTOIP                 0
#define LWIP_UDP                    1
#define LWIP_TCP                    1
#define LWIP_RAW                    0
#define LWIP_DNS                    0
#define LWIP_IGMP                   0
#define LWIP_NETIF_STATUS_CALLBACK  1
#define LWIP_NETIF_LINK_CALLBACK    1
#define LWIP_IPV6_DHCP6             0
#define LWIP_IPV6_MLD               1
#define LWIP_ICMP6                  1
/* Update streams are TCP and Linux sets DF: no fragmentation or reassembly code at all. */
#define IP_REASSEMBLY               0
#define IP_FRAG                     0
#define LWIP_IPV6_REASS             0
#define LWIP_IPV6_FRAG              0
/* TCP/UDP checksums are checked by the link once per frame (net/netif_packet.c). */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1

/* Memory: lwIP's own heap and pools, sized for a few concurrent update streams. */
#define MEM_ALIGNMENT               8
#define MEM_SIZE                    (512 * 1024)
#define MEMP_NUM_PBUF               64
#define MEMP_NUM_TCP_PCB            64
#define MEMP_NUM_TCP_PCB_LISTEN     4
#define MEMP_NUM_TCP_SEG            512
#define PBUF_POOL_SIZE              512
#define PBUF_POOL_BUFSIZE           1536

/* TCP: window scaling so a fast link is not capped at 64 KiB in flight; TLS needs >= 16 KiB. */
#define TCP_MSS                     1460
#define LWIP_WND_SCALE              1
#define TCP_RCV_SCALE               4
#define TCP_WND                     (256 * 1024)
#define TCP_SND_BUF                 (32 * TCP_MSS)
#define TCP_SND_QUEUELEN            (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_QUEUE_OOSEQ             1
#define LWIP_TCP_KEEPALIVE          1
#define TCP_LISTEN_BACKLOG          1

#define LWIP_CHECKSUM_ON_COPY       1
#define LWIP_STATS                  0
#define LWIP_STATS_DISPLAY          0
#define LWIP_DEBUG                  0

#endif
