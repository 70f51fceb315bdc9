//! How a batch of datagrams becomes messages for one `sendmmsg` call: datagrams to the same
//! destination are joined into one UDP GSO message (`UDP_SEGMENT`) when the kernel allows it.
//!
//! A GSO message is one `sendmsg` worth of kernel work for many datagrams: equal-sized segments
//! to one destination, the last one possibly shorter. In a fan-out every copy of a packet goes to
//! a different subscriber, so joining happens only when a batch holds several packets for the same
//! subscriber (a burst of video packets, say). Datagrams to one destination keep their order;
//! datagrams to different destinations may be sent in a different order than queued, which UDP
//! never promised anyway.

use socket2::SockAddr;

use crate::BATCH;

/// Segments in one GSO message at most (the kernel's `UDP_MAX_SEGMENTS` is 64 before Linux 6.3,
/// 128 since).
pub const MAX_SEGMENTS: usize = 64;
/// Payload bytes in one GSO message at most: an IP datagram is at most 65,535 bytes, headers
/// included.
pub const MAX_GSO_BYTES: usize = 65_000;

/// One message of a plan: `count` datagrams, taken from the plan's `order` starting at `first`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Message {
    pub first: usize,
    pub count: usize,
    /// The segment size (the first datagram's length); meaningful when `count > 1`.
    pub segment: usize,
}

/// Messages for up to [`BATCH`] datagrams, without allocating.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Datagram indices, message by message.
    pub order: [usize; BATCH],
    pub messages: [Message; BATCH],
    pub len: usize,
}

impl Plan {
    /// Plan `datagrams` (at most [`BATCH`]: the rest is left out). `gso`: whether datagrams may be
    /// joined at all.
    pub fn new<D: AsRef<[u8]>>(datagrams: &[(D, SockAddr)], gso: bool) -> Plan {
        let n = datagrams.len().min(BATCH);
        // Which message each datagram joins, and per message: segment size, bytes, open or not.
        let mut message_of = [0usize; BATCH];
        let mut heads = [0usize; BATCH];
        let mut segment = [0usize; BATCH];
        let mut bytes = [0usize; BATCH];
        let mut count = [0usize; BATCH];
        let mut open = [false; BATCH];
        let mut messages = 0;
        for (i, (datagram, to)) in datagrams.iter().take(n).enumerate() {
            let len = datagram.as_ref().len();
            // Only the newest message to this destination may take more: joining an older one
            // would send this datagram before ones queued earlier to the same place.
            let joinable = gso
                .then(|| (0..messages).rev().find(|&m| datagrams[heads[m]].1 == *to))
                .flatten()
                .filter(|&m| {
                    open[m]
                        && len <= segment[m]
                        && count[m] < MAX_SEGMENTS
                        && bytes[m] + len <= MAX_GSO_BYTES
                });
            let m = match joinable {
                Some(m) => m,
                None => {
                    let m = messages;
                    messages += 1;
                    heads[m] = i;
                    segment[m] = len;
                    open[m] = gso && len > 0;
                    m
                }
            };
            message_of[i] = m;
            count[m] += 1;
            bytes[m] += len;
            // A shorter segment can only be the last one.
            if len < segment[m] {
                open[m] = false;
            }
        }
        let mut plan = Plan {
            order: [0; BATCH],
            messages: [Message::default(); BATCH],
            len: messages,
        };
        // Each message's place in `order` follows the ones before it; then each datagram goes to
        // the next free slot of its message, which keeps the queue's order within a message.
        let mut next = 0;
        let mut slot = [0usize; BATCH];
        for m in 0..messages {
            plan.messages[m] = Message {
                first: next,
                count: count[m],
                segment: segment[m],
            };
            slot[m] = next;
            next += count[m];
        }
        for (i, &m) in message_of.iter().take(n).enumerate() {
            plan.order[slot[m]] = i;
            slot[m] += 1;
        }
        plan
    }

    /// The datagrams of messages `from..` as a plan of one message each, in the same order (for
    /// when the kernel refuses segmented messages).
    pub fn unjoined_from(&self, from: usize) -> Plan {
        let mut plan = Plan {
            order: [0; BATCH],
            messages: [Message::default(); BATCH],
            len: 0,
        };
        for m in from..self.len {
            for &i in self.datagrams(m) {
                plan.order[plan.len] = i;
                plan.messages[plan.len] = Message {
                    first: plan.len,
                    count: 1,
                    segment: 0,
                };
                plan.len += 1;
            }
        }
        plan
    }

    /// The messages from `from` on, with message `from` split into one message per datagram (for
    /// when the kernel refuses that one segmented message).
    pub fn unjoin_message(&self, from: usize) -> Plan {
        let mut plan = Plan {
            order: [0; BATCH],
            messages: [Message::default(); BATCH],
            len: 0,
        };
        let mut next = 0;
        let mut add = |plan: &mut Plan, group: &[usize], segment: usize| {
            plan.order[next..next + group.len()].copy_from_slice(group);
            plan.messages[plan.len] = Message {
                first: next,
                count: group.len(),
                segment,
            };
            plan.len += 1;
            next += group.len();
        };
        for m in from..self.len {
            let segment = self.messages[m].segment;
            if m == from {
                for single in self.datagrams(m).chunks(1) {
                    add(&mut plan, single, segment);
                }
            } else {
                add(&mut plan, self.datagrams(m), segment);
            }
        }
        plan
    }

    /// The datagram indices of message `m`.
    pub fn datagrams(&self, m: usize) -> &[usize] {
        let message = self.messages[m];
        &self.order[message.first..message.first + message.count]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn to(port: u16) -> SockAddr {
        SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn plan(items: &[(usize, u16)], gso: bool) -> Vec<Vec<usize>> {
        let datagrams: Vec<(Vec<u8>, SockAddr)> = items
            .iter()
            .map(|(len, port)| (vec![0u8; *len], to(*port)))
            .collect();
        let plan = Plan::new(&datagrams, gso);
        (0..plan.len).map(|m| plan.datagrams(m).to_vec()).collect()
    }

    #[test]
    fn a_fan_out_of_single_packets_stays_one_message_each() {
        assert_eq!(
            plan(&[(1200, 1), (1200, 2), (1200, 3)], true),
            vec![vec![0], vec![1], vec![2]]
        );
    }

    #[test]
    fn packets_to_one_subscriber_join_in_order() {
        // Two packets of a frame fanned out to three subscribers, then the frame's short last one.
        let items = [
            (1200, 1),
            (1200, 2),
            (1200, 3),
            (1200, 1),
            (1200, 2),
            (1200, 3),
            (300, 1),
            (300, 2),
            (300, 3),
        ];
        assert_eq!(
            plan(&items, true),
            vec![vec![0, 3, 6], vec![1, 4, 7], vec![2, 5, 8]]
        );
        assert_eq!(plan(&items, false).len(), 9, "no GSO: one message each");
    }

    #[test]
    fn datagrams_to_one_destination_never_overtake_each_other() {
        // Two publishers' packets of different sizes to one subscriber: joining the 100-byte ones
        // into the first message would send #2 before #1.
        let items = [
            (100, 1),
            (1200, 1),
            (100, 1),
            (100, 1),
            (1250, 1),
            (1200, 1),
        ];
        let messages = plan(&items, true);
        let sent: Vec<usize> = messages.concat();
        assert_eq!(sent, vec![0, 1, 2, 3, 4, 5], "{messages:?}");
        assert_eq!(messages, vec![vec![0], vec![1, 2], vec![3], vec![4, 5]]);
    }

    #[test]
    fn a_refused_message_is_split_and_the_rest_kept() {
        let datagrams: Vec<(Vec<u8>, SockAddr)> = [(1200, 1), (1200, 2), (1200, 1), (1200, 2)]
            .iter()
            .map(|(len, port)| (vec![0u8; *len], to(*port)))
            .collect();
        let joined = Plan::new(&datagrams, true);
        assert_eq!(joined.len, 2);
        let split = joined.unjoin_message(0);
        let messages: Vec<Vec<usize>> = (0..split.len)
            .map(|m| split.datagrams(m).to_vec())
            .collect();
        assert_eq!(messages, vec![vec![0], vec![2], vec![1, 3]]);
        let single = joined.unjoined_from(1);
        let messages: Vec<Vec<usize>> = (0..single.len)
            .map(|m| single.datagrams(m).to_vec())
            .collect();
        assert_eq!(messages, vec![vec![1], vec![3]]);
    }

    #[test]
    fn a_short_segment_ends_its_message_and_a_longer_one_starts_another() {
        assert_eq!(
            plan(&[(1200, 1), (500, 1), (1200, 1), (1300, 1)], true),
            vec![vec![0, 1], vec![2], vec![3]]
        );
    }

    #[test]
    fn messages_respect_the_segment_and_byte_limits() {
        let many: Vec<(usize, u16)> = (0..BATCH).map(|_| (1200, 1)).collect();
        let messages = plan(&many, true);
        // 1200 B × 54 = 64,800 B fits; the 55th would not.
        assert_eq!(messages.len(), 1, "{} datagrams fit one message", BATCH);
        let big: Vec<(usize, u16)> = (0..BATCH).map(|_| (9000, 1)).collect();
        let messages = plan(&big, true);
        assert!(messages.iter().all(|m| m.len() * 9000 <= MAX_GSO_BYTES));
        assert_eq!(messages.iter().map(Vec::len).sum::<usize>(), BATCH);
    }
}
