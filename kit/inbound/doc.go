// Package inbound helps an adapter hand user messages to the core without
// losing one, whatever its network does with a message that was not
// acknowledged. core.DeliverFunc returns nil once the core has committed
// the message; what the adapter does otherwise depends on its network:
//
//   - A network that redelivers until acknowledged (Telegram's update
//     offset, the webchat page's re-send): on error, do not acknowledge.
//     The network sends the message again, and the core drops what it
//     already has by Inbound.ID. Call Deliver for the timeout.
//
//   - A network that never redelivers (Discord's gateway: a MESSAGE_CREATE
//     missed is gone): retry in the process until the core accepts the
//     message or the adapter stops (Retry), and keep a Checkpoint of how
//     far each stream was handed over (the last message id per channel),
//     from which the adapter fetches what it missed after a restart or a
//     dropped session (a backfill: Discord's GET
//     /channels/{id}/messages?after=). The checkpoint moves only after
//     the core accepted a message, and may lag behind on a crash: the
//     backfill then hands over a few messages again, which the core drops
//     by Inbound.ID. At least once, never lost. It is a file in the
//     instance's DataDir (OpenCheckpoint), or, when several replicas
//     share one store, a journal in it (OpenJournalCheckpoint on
//     Instance.Journals), so that the replica that takes the receiving
//     over backfills from where the last one got to.
//
//   - A network with a short acknowledgement deadline (Slack: 3 s for an
//     Events API request or a Socket Mode envelope): commit fast, then
//     acknowledge. Call Deliver with AckDeadline, which leaves time for
//     the acknowledgement itself. If the core does not commit in time
//     (a slow disk), do not acknowledge: Slack retries the event (three
//     times, over about five minutes, with the same event id), and the
//     core drops a retry of what it committed late. On the network's last
//     retry, acknowledge and fall back to Retry, since nothing will come
//     again.
//
// In every case a message the core refuses for good (core.IsPermanent:
// empty, oversize, invalid UTF-8) is acknowledged and dropped, with a
// notice to the user if the adapter has one: redelivering it cannot help.
// The core logs every refusal once; the adapter need not log it again.
package inbound
