using System.Text.Json;
using CqrsInference.Commands;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Edge;

/// <summary>One site cannot write into another site's (another tenant's) audit stream: the core takes the site from where a message came, never from its payload.</summary>
public sealed partial class EdgeTests
{
    private const string OtherSite = "site2";

    [Fact]
    public async Task An_event_on_a_sites_subject_that_claims_another_site_is_not_recorded_and_the_sites_next_event_is()
    {
        await StartServersAsync();
        await using var nats = new NatsClient(_edge.Url);
        var js = nats.CreateJetStreamContext();
        await EdgeTopology.EnsureSiteAsync(js, Site, TimeSpan.FromHours(1), TimeSpan.FromDays(1), CancellationToken.None);

        await PublishRawAsync(js, EdgeTopology.Subject(Site, "items"), Item(OtherSite, "forged.wav"));
        await EdgeTopology.PublishAsync(js, Item(Site, "genuine.wav"), "items", CancellationToken.None);
        await WaitForCoreItemsAsync(1);

        (await RecordedAsync(OtherSite)).ShouldBeEmpty();
        (await RecordedAsync(Site)).ShouldHaveSingleItem().ShouldBeOfType<V1.EdgeItemProcessed>().ItemId.ShouldBe("genuine.wav");
    }

    [Fact]
    public async Task What_a_sites_stream_holds_under_another_sites_subjects_never_reaches_the_core()
    {
        await StartServersAsync();
        await using var nats = new NatsClient(_edge.Url);
        var js = nats.CreateJetStreamContext();

        // The site's operator widens its own stream to another site's subjects, and writes there.
        await js.CreateOrUpdateStreamAsync(new StreamConfig(EdgeTopology.SiteStream(Site), [EdgeTopology.SiteSubjects(Site), EdgeTopology.SiteSubjects(OtherSite)]));
        await EdgeTopology.PublishAsync(js, Item(OtherSite, "forged.wav"), "items", CancellationToken.None);
        await EdgeTopology.PublishAsync(js, Item(Site, "genuine.wav"), "items", CancellationToken.None);
        await WaitForCoreItemsAsync(1);

        (await RecordedAsync(OtherSite)).ShouldBeEmpty();
        (await RecordedAsync(Site)).ShouldHaveSingleItem().ShouldBeOfType<V1.EdgeItemProcessed>().ItemId.ShouldBe("genuine.wav");
        await using var core = new NatsClient(_core.Url);
        (await core.CreateJetStreamContext().GetStreamAsync(EdgeTopology.CoreStream, new StreamInfoRequest { SubjectsFilter = ">" }))
            .Info.State.Subjects!.Keys.ShouldBe([EdgeTopology.Subject(Site, "items")]);
    }

    [Fact]
    public async Task A_client_at_a_site_reaches_neither_the_cores_subjects_nor_another_sites_yet_the_sites_events_still_reach_the_core()
    {
        await StartServersAsync();
        await using var core = new NatsClient(_core.Url);
        var arrived = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var listening = new CancellationTokenSource();
        var listener = Task.Run(async () =>
        {
            await foreach (var message in core.SubscribeAsync<byte[]>(">", cancellationToken: listening.Token))
            {
                arrived.Enqueue(message.Subject);
            }
        });
        await core.PingAsync();

        // Whatever connects to the site's port (or its MQTT listener: the same subjects): the core's
        // event log and webhooks, another site's raw data and events, another domain's JetStream API.
        string[] forbidden = ["log.0.events.local.mlp-test.x", "jobs.local.mlp-test.batch.default.x", "webhooks.x", "cqrsi.infer.local.mlp-test",
            $"cqrsi.{OtherSite}.raw.wav.clip", $"edge.{OtherSite}.items", $"$JS.{OtherSite}.API.STREAM.INFO.EDGE_{OtherSite}", "$KV.cqrsi_claims.x"];
        await using var site = new NatsClient(_edge.Url);
        foreach (var subject in forbidden)
        {
            await site.PublishAsync(subject, "forged"u8.ToArray());
        }

        var js = site.CreateJetStreamContext();
        await EdgeTopology.EnsureSiteAsync(js, Site, TimeSpan.FromHours(1), TimeSpan.FromDays(1), CancellationToken.None);
        await EdgeTopology.PublishAsync(js, Item(Site, "genuine.wav"), "items", CancellationToken.None);
        await WaitForCoreItemsAsync(1);
        await site.PublishAsync("site.to.core.allowed", "ok"u8.ToArray());
        await Retry.Until("an allowed subject to cross", () => Task.FromResult(arrived.ToArray()), a => a.Contains("site.to.core.allowed"));
        await listening.CancelAsync();
        await listener.ContinueWith(_ => { }, TaskScheduler.Default);

        arrived.Intersect(forbidden).ShouldBeEmpty();
        (await RecordedAsync(Site)).ShouldHaveSingleItem().ShouldBeOfType<V1.EdgeItemProcessed>().ItemId.ShouldBe("genuine.wav");
    }

    [Fact]
    public async Task A_second_copy_of_a_message_id_in_a_sites_stream_does_not_hold_up_the_sites_next_events()
    {
        await StartServersAsync();
        await using var nats = new NatsClient(_edge.Url);
        var js = nats.CreateJetStreamContext();

        // The site's own window is short here (EdgeSite:DuplicateWindow; 24 h by default, when an item
        // is redone more than a day after it was first done): the same item's events twice.
        await EdgeTopology.EnsureSiteAsync(js, Site, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1), CancellationToken.None);
        await EdgeTopology.PublishAsync(js, Item(Site, "redone.wav"), "items", CancellationToken.None);
        await WaitForCoreItemsAsync(1);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await EdgeTopology.PublishAsync(js, Item(Site, "redone.wav"), "items", CancellationToken.None);
        await EdgeTopology.PublishAsync(js, Item(Site, "next.wav"), "items", CancellationToken.None);

        // The copy stalled the core's sourcing of the site for its 2-minute window.
        await _host.WaitForCoreItemsAsync(Site, 2, TimeSpan.FromSeconds(20));
        (await RecordedAsync(Site)).OfType<V1.EdgeItemProcessed>().Select(i => i.ItemId).ShouldBe(["redone.wav", "next.wav"]);
    }

    private static V1.EdgeItemProcessed Item(string site, string itemId) =>
        new(site, itemId, "audio/wav", 1000, 0, 0, 0.01, DateTimeOffset.UtcNow);

    /// <summary>Publishes an edge event on a subject of the caller's choosing, whatever site its payload names.</summary>
    private static Task<(long Bytes, ulong Sequence)> PublishRawAsync(INatsJSContext js, string subject, object @event)
    {
        var type = EdgeEventNames.Of(@event);
        return EventWire.PublishAsync(js, subject, EventWire.Headers(type, trace: null),
            JsonSerializer.SerializeToUtf8Bytes(@event, EdgeEventNames.Types[type], EdgeJson.Default), EdgeEventNames.MessageId(@event), 4, CancellationToken.None);
    }

    private async Task<List<object>> RecordedAsync(string site)
    {
        await using var session = _host.Services.GetRequiredService<IDocumentStore>().QuerySession();
        return (await session.Events.FetchStreamAsync(EdgeEventNames.SiteStreamId(site))).Select(e => e.Data).ToList();
    }
}
