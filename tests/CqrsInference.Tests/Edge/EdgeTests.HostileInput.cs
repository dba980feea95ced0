using System.Net.Http.Json;
using System.Text.Json;
using CqrsInference.Commands.Jobs;
using CqrsInference.Projections.Analytics;
using CqrsInference.Tests.Infrastructure;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

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

    /// <summary>Drops one raw item into the input folder, written aside and renamed in.</summary>
    private void FeedFile(string name, byte[] bytes)
    {
        var temporary = Path.Combine(_directory, name);
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, Path.Combine(Input, name));
    }

    private async Task PublishOverMqttAsync(string topic, byte[] payload)
    {
        using var device = new MqttClientFactory().CreateMqttClient();
        await device.ConnectAsync(new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", _mqttPort).WithClientId("hostile-device").WithProtocolVersion(MqttProtocolVersion.V311).Build());
        await device.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await device.DisconnectAsync();
    }
}
