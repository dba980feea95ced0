using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace CqrsInference.Messaging;

public static class PubAcks
{
    /// <summary>
    /// Throws unless JetStream stored the message, now or before: a duplicate (its Nats-Msg-Id was
    /// already stored) is the idempotent success every retry here relies on, while
    /// <c>EnsureSuccess</c> alone would throw for it.
    /// </summary>
    public static PubAckResponse EnsureStored(this PubAckResponse ack)
    {
        if (!ack.Duplicate)
        {
            ack.EnsureSuccess();
        }

        return ack;
    }
}
