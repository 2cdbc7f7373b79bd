using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Observability;

/// <summary>
/// SPEC §15: with the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> set, the real host exports its metrics and
/// traces over OTLP (here OTLP/HTTP to a recording receiver), besides serving the Prometheus scrape.
/// </summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task HostProcess_WithOtlpEndpoint_ExportsMetricsAndTraces()
    {
        await using var collector = await TestBackend.StartAsync("collector", static (context, _) =>
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/x-protobuf";
            return Task.CompletedTask;
        });
        using var dir = new TempDirectory();
        using var host = HostProcess.Start(
            ["--demo", "--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json")],
            dir.Path,
            new Dictionary<string, string>
            {
                ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Url,
                ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
                ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
                ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
            });
        var address = await host.WaitForListeningAsync(HostProcess.ExitBound);
        Assert.True(address is not null, "the host did not start: " + host.Output);

        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        using (var chat = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"qwen3-8b","messages":[{"role":"user","content":"hello there"}]}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline && !(Received(collector, "/v1/metrics", "gen_ai.server.request.duration") && Received(collector, "/v1/traces", "gateway.estimated_prompt_tokens")))
        {
            await Task.Delay(100);
        }

        Assert.True(Received(collector, "/v1/metrics", "gen_ai.server.request.duration"), "no OTLP metrics with the GenAI duration: " + Paths(collector));
        Assert.True(Received(collector, "/v1/traces", "gateway.estimated_prompt_tokens"), "no OTLP trace with the routing span (its decision attributes): " + Paths(collector));
    }

    // OTLP/protobuf carries names as UTF-8 strings: a name in the payload means the series or span was sent.
    private static bool Received(TestBackend collector, string path, string name) =>
        collector.Requests.Any(r => r.Method == "POST" && r.Path == path && r.Body.AsSpan().IndexOf(Encoding.UTF8.GetBytes(name)) >= 0);

    private static string Paths(TestBackend collector) => string.Join(", ", collector.Requests.Select(r => r.Method + " " + r.Path));
}
