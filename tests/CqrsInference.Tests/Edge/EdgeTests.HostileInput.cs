using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Messaging;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace CqrsInference.Tests.Edge;

/// <summary>Raw items the site cannot read, through the running site: each ends failed with its reason, and the site goes on.</summary>
public sealed partial class EdgeTests
{
    /// <summary>The WAV that crashed the site, and crashed it again on every restart: a <c>fmt </c> chunk of 4 bytes.</summary>
    private static readonly byte[] ShortFormatWav = [.. "RIFF"u8, 24, 0, 0, 0, .. "WAVEfmt "u8, 4, 0, 0, 0, 1, 0, 1, 0, .. "data"u8, 2, 0, 0, 0, 0, 0];

    [Fact]
    public async Task Malformed_items_end_failed_with_their_reason_and_the_good_one_behind_them_is_processed()
    {
        await StartServersAsync();
        _processor = await StartProcessorAsync(mqtt: true);
        FeedFile("item-0000.wav", ShortFormatWav);
        FeedFile("item-0001.png", _clips[2].Bytes[..(_clips[2].Bytes.Length / 2)]);
        FeedFile("item-0002.wav", []);
        FeedFile("item-0003.wav", _clips[0].Bytes);
        await PublishOverMqttAsync($"cqrsi/{Site}/raw/wav/mic1-0001", [0x52, 0x49, 0x46, 0x46, 0xff, 0x00, 0x13, 0x37]);

        var store = _host.Services.GetRequiredService<IDocumentStore>();
        var status = await Retry.Until("the core to record 4 failed items and 1 processed", async () =>
        {
            await using var session = store.QuerySession();
            return await session.LoadAsync<EdgeSiteStatus>(EdgeEventNames.SiteStreamId(Site));
        }, s => s is { FailedItems: >= 4, Items: >= 1 }, TimeSpan.FromSeconds(40)) ?? throw new InvalidOperationException("no status");

        await using var query = store.QuerySession();
        var recorded = (await query.Events.FetchStreamAsync(EdgeEventNames.SiteStreamId(Site))).Select(e => e.Data).ToList();
        var failed = recorded.OfType<V1.EdgeItemFailed>().ToDictionary(f => f.ItemId.StartsWith("mqtt-", StringComparison.Ordinal) ? "mqtt" : f.ItemId);
        failed.ToDictionary(f => f.Key, f => f.Value.ErrorCode).ShouldBe(new Dictionary<string, string>
        {
            ["item-0000.wav"] = EdgeErrorCodes.WavFormatInvalid,
            ["item-0001.png"] = "undecodable_image",
            ["item-0002.wav"] = EdgeErrorCodes.NotWav,
            ["mqtt"] = EdgeErrorCodes.NotWav,
        }, ignoreOrder: true);
        failed.Values.ShouldAllBe(f => f.Site == Site && f.Reason.Length > 0);
        (failed["item-0000.wav"].Kind, failed["item-0000.wav"].RawBytes).ShouldBe(("audio/wav", ShortFormatWav.Length));
        recorded.OfType<V1.EdgeItemProcessed>().ShouldHaveSingleItem().ItemId.ShouldBe("item-0003.wav");
        recorded.OfType<V1.EdgeSpeechDetected>().ShouldNotBeEmpty();
        recorded.OfType<V1.EdgeSpeechDetected>().ShouldAllBe(s => s.ItemId == "item-0003.wav");
        (status.Items, status.FailedItems).ShouldBe((1, 4));

        _processor.HasExited.ShouldBeFalse(_processor.Output);
        DoneCount().ShouldBe(4);
        var sites = await _client.GetFromJsonAsync<JsonElement>("/v1/analytics/edge/sites");
        sites.EnumerateArray().Single().GetProperty("failedItems").GetInt64().ShouldBe(4);
    }

    [Fact]
    public async Task A_reused_name_a_named_pipe_a_name_with_line_ends_and_a_link_to_nothing_each_end_once_and_never_stall_the_site()
    {
        await StartServersAsync();
        _processor = await StartProcessorAsync();
        FeedFile("frame.wav", _clips[0].Bytes);
        await WaitForDoneAsync(1);

        // A new recording under a name already done (a device that reuses its names), a named pipe
        // (it held the site waiting for a writer), a name with CR LF (it stalled the site: a message
        // id header cannot carry it) and one with LF (never checkpointed: redone every poll), a
        // link to nothing (a warning 4 times a second, for ever), then a good item behind them all.
        FeedFile("frame.wav", _clips[1].Bytes);
        MakeFifo(Path.Combine(Input, "pipe.wav"));
        FeedFile("cr\r\nlf.wav", _clips[0].Bytes);
        FeedFile("l\nf.wav", _clips[1].Bytes);
        File.CreateSymbolicLink(Path.Combine(Input, "gone.wav"), "/nonexistent/clip.wav");
        FeedFile("zz-last.wav", _clips[0].Bytes);
        try
        {
            await WaitForCoreItemsAsync(5); // processed ones; the failed two come before the last in name order
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{_processor.Output}", e);
        }

        await using var session = _host.Services.GetRequiredService<IDocumentStore>().QuerySession();
        var recorded = (await session.Events.FetchStreamAsync(EdgeEventNames.SiteStreamId(Site))).Select(e => e.Data).ToList();
        recorded.OfType<V1.EdgeItemProcessed>().Select(i => i.ItemId)
            .ShouldBe(["frame.wav", "frame~2.wav", "cr%0D%0Alf.wav", "l%0Af.wav", "zz-last.wav"], ignoreOrder: true);
        recorded.OfType<V1.EdgeItemProcessed>().Single(i => i.ItemId == "frame~2.wav").RawBytes.ShouldBe(_clips[1].Bytes.Length);
        var failed = recorded.OfType<V1.EdgeItemFailed>().ToDictionary(f => f.ItemId, f => f.ErrorCode);
        failed.ShouldBe(new Dictionary<string, string> { ["pipe.wav"] = EdgeErrorCodes.NotWav, ["gone.wav"] = EdgeErrorCodes.FileUnreadable }, ignoreOrder: true);

        // Done items left the input folder; each is done once (none is redone every poll).
        Directory.EnumerateFileSystemEntries(Input).Select(Path.GetFileName).ShouldBe(["done"]);
        await Task.Delay(TimeSpan.FromSeconds(1));
        (await File.ReadAllLinesAsync(Path.Combine(State, "done.log"))).Length.ShouldBe(7);
        _processor.Output.ShouldNotContain("was taken away before it was read");
    }

    [Fact]
    public async Task A_site_store_lost_has_its_stream_made_again_by_the_next_item_continuing_past_the_old_sequences_so_the_core_takes_it()
    {
        await StartServersAsync();
        _processor = await StartProcessorAsync();
        FeedFile("before.wav", _clips[0].Bytes);
        FeedFile("before-2.wav", _clips[1].Bytes);
        await WaitForDoneAsync(2);
        await WaitForCoreItemsAsync(2);

        // The site's store lost (a disk replaced, a container without its volume): the site's
        // server comes back empty. Publishing into nothing was retried for ever, until the processor
        // restarted; then the new stream's first sequences were ones the core's sourcing had taken
        // from the old stream already, so it waited past them and never took those events.
        await _edge.StopProcessAsync();
        _edge.WipeJetStreamStore();
        await _edge.StartProcessAsync();
        FeedFile("after.wav", _clips[1].Bytes);
        await WaitForDoneAsync(3);

        await using var nats = new NatsClient(_edge.Url);
        var remade = await nats.CreateJetStreamContext().GetStreamAsync(EdgeTopology.SiteStream(Site), new StreamInfoRequest { SubjectsFilter = $"edge.{Site}.items" });
        remade.Info.State.Subjects!.ShouldContainKey($"edge.{Site}.items");
        remade.Info.State.FirstSeq.ShouldBeGreaterThan(1UL);
        await WaitForCoreItemsAsync(3);
        _processor.Output.ShouldContain("it continues at sequence");
    }

    [Fact]
    public async Task A_site_whose_loop_hangs_reads_unhealthy_saying_so_and_healthy_again_once_it_moves()
    {
        await StartServersAsync();
        var port = NatsServerProcess.FreePort();
        _processor = await StartProcessorAsync(settings: new Dictionary<string, string>
        {
            ["EdgeSite:StallAfter"] = "00:00:03",
            ["Urls"] = $"http://127.0.0.1:{port}",
        });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        FeedFile("first.wav", _clips[0].Bytes);
        await WaitForDoneAsync(1);
        (await http.GetAsync("/health")).StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);

        // The site's own server hangs: the loop waits on it. /health read healthy while nothing moved.
        await _edge.FreezeAsync();
        FeedFile("second.wav", _clips[1].Bytes);
        var probed = await Retry.Until("/health's edge-loop check to say the loop has not moved", async () =>
        {
            using var health = await http.GetAsync("/health");
            return (health.StatusCode, _processor.Output);
        }, h => h.Output.Contains("has not moved for", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        probed.StatusCode.ShouldBe(System.Net.HttpStatusCode.ServiceUnavailable);

        await _edge.ThawAsync();
        await WaitForDoneAsync(2);
        await Retry.Until("/health to read healthy again", async () => (await http.GetAsync("/health")).StatusCode,
            s => s == System.Net.HttpStatusCode.OK, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Mqtt_items_on_topics_with_control_characters_are_processed_and_the_items_after_them_too()
    {
        await StartServersAsync();
        _processor = await StartProcessorAsync(mqtt: true);

        // nats-server keeps such a topic's characters in the subject, which a client cannot read in
        // a delivery's protocol line: each delivery broke the site's connection (every 30 s, for the
        // queue's 30 days), and the item was never processed nor failed.
        await PublishOverMqttAsync($"cqrsi/{Site}/raw/wav/mic\t1", _clips[0].Bytes);
        await PublishOverMqttAsync($"cqrsi/{Site}/raw/wav/mic\r\n2", _clips[1].Bytes);
        await PublishOverMqttAsync($"cqrsi/{Site}/raw/wav/mic3", _clips[0].Bytes);
        await WaitForCoreItemsAsync(3);

        await using var session = _host.Services.GetRequiredService<IDocumentStore>().QuerySession();
        var items = (await session.Events.FetchStreamAsync(EdgeEventNames.SiteStreamId(Site))).Select(e => e.Data).OfType<V1.EdgeItemProcessed>().ToList();
        items.Select(i => i.ItemId[(i.ItemId.IndexOf("-mic", StringComparison.Ordinal) + 1)..]).ShouldBe(["mic%091.wav", "mic%0D%0A2.wav", "mic3.wav"]);
        await using var nats = new NatsClient(_edge.Url);
        await Retry.Until("the site's raw queue to be empty",
            async () => (await nats.CreateJetStreamContext().GetStreamAsync(EdgeTopology.RawStream(Site))).Info.State.Messages,
            n => n == 0);
    }

    [Fact]
    public async Task A_device_over_MQTT_publishes_raw_items_but_cannot_write_into_the_sites_event_stream()
    {
        await StartServersAsync();
        _processor = await StartProcessorAsync(mqtt: true);

        // The MQTT listener's devices may only publish raw items (scripts/lib.sh,
        // cqrsi_nats_site_mqtt_conf): without that, a topic under edge/<site>/ went straight into
        // the site's stream, past the site's processor, as an event the core would take as the site's.
        await PublishOverMqttAsync($"edge/{Site}/items", JsonSerializer.SerializeToUtf8Bytes(Item(Site, "forged.wav")));
        await PublishOverMqttAsync($"edge/{Site}/forged", [1, 2, 3]);
        await PublishOverMqttAsync($"cqrsi/{Site}/raw/wav/mic1", _clips[0].Bytes);
        await WaitForCoreItemsAsync(1);

        await using var nats = new NatsClient(_edge.Url);
        var site = await nats.CreateJetStreamContext().GetStreamAsync(EdgeTopology.SiteStream(Site), new StreamInfoRequest { SubjectsFilter = ">" });
        site.Info.State.Subjects!.Keys.ShouldNotContain(EdgeTopology.Subject(Site, "forged"));
        (await RecordedAsync(Site)).OfType<V1.EdgeItemProcessed>().ShouldHaveSingleItem().ItemId.ShouldEndWith("-mic1.wav");
    }

    private static void MakeFifo(string path)
    {
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        mkfifo.ExitCode.ShouldBe(0);
    }

    /// <summary>Drops one raw item into the input folder, written aside and renamed in.</summary>
    private void FeedFile(string name, byte[] bytes)
    {
        var temporary = Path.Combine(_directory, name);
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, Path.Combine(Input, name));
    }

    /// <summary>
    /// One connection per item, each with its own client id, as a device would retry its connect:
    /// under the whole suite's load the site's server closed a connect now and then while setting up
    /// its session (which it keeps in JetStream), with one id reused for every item (1 test of 1,400
    /// failed in a clean-clone run, "Error while authenticating. Connection closed").
    /// </summary>
    private async Task PublishOverMqttAsync(string topic, byte[] payload)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var device = new MqttClientFactory().CreateMqttClient();
            try
            {
                await device.ConnectAsync(new MqttClientOptionsBuilder()
                    .WithTcpServer("127.0.0.1", _mqttPort).WithClientId($"hostile-device-{Guid.NewGuid():N}").WithProtocolVersion(MqttProtocolVersion.V311).Build());
            }
            catch (MQTTnet.Adapter.MqttConnectingFailedException) when (attempt < 5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500));
                continue;
            }

            await device.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            await device.DisconnectAsync();
            return;
        }
    }
}
