using System.Net;
using System.Text;
using System.Text.Json;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Observability;

/// <summary>
/// SPEC §15's access log: one structured line per request with the endpoint, key id, estimate, usage, status,
/// duration, time to first byte and attempts; JSON console output chosen by configuration (ASP.NET Core's
/// <c>Logging:Console:FormatterName=json</c>), checked on the real host process.
/// </summary>
public sealed class AccessLogTests
{
    [Fact]
    public async Task HostProcess_JsonConsole_WritesOneStructuredLinePerRequest()
    {
        using var dir = new TempDirectory();
        using var host = HostProcess.Start(
            ["--demo", "--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json"),
             "--Logging:Console:FormatterName=json"],
            dir.Path);
        var address = await host.WaitForListeningAsync(HostProcess.ExitBound);
        Assert.True(address is not null, "the host did not start: " + host.Output);

        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        using (var chat = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"qwen3-8b","messages":[{"role":"user","content":"hello there"}]}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        using (var unknown = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"no-such-model","messages":[]}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }

        var lines = await WaitForAccessLinesAsync(host, 2);
        Assert.Equal(2, lines.Count);

        var served = lines[0].GetProperty("State");
        Assert.Equal(140, lines[0].GetProperty("EventId").GetInt32());
        Assert.Equal("ModelRouting.AccessLog", lines[0].GetProperty("Category").GetString());
        Assert.Equal("chat", served.GetProperty("Operation").GetString());
        Assert.Equal("qwen3-8b", served.GetProperty("Model").GetString());
        Assert.Equal("qwen3-8b", served.GetProperty("Endpoint").GetString());
        Assert.Equal(200, served.GetProperty("Status").GetInt32());
        Assert.Equal(1, served.GetProperty("Attempts").GetInt32());
        Assert.True(served.GetProperty("EstimatedPromptTokens").GetInt64() > 0);
        Assert.True(served.GetProperty("PromptTokens").GetInt64() > 0);
        Assert.True(served.GetProperty("CompletionTokens").GetInt64() > 0);
        Assert.True(served.GetProperty("DurationMs").GetDouble() > 0);
        Assert.True(served.GetProperty("TimeToFirstByteMs").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Null, served.GetProperty("KeyId").ValueKind); // an open gateway: no client key

        var refused = lines[1].GetProperty("State");
        Assert.Equal(404, refused.GetProperty("Status").GetInt32());
        Assert.Equal("model_not_found", refused.GetProperty("ErrorCode").GetString());
        Assert.Equal("(unknown)", refused.GetProperty("Model").GetString());
        Assert.Equal("(none)", refused.GetProperty("Endpoint").GetString());
    }

    private static async Task<List<JsonElement>> WaitForAccessLinesAsync(HostProcess host, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var lines = host.Output.Split('\n')
                .Select(l => l.Trim())
                .Where(l => l.StartsWith('{') && l.Contains("\"ModelRouting.AccessLog\"", StringComparison.Ordinal))
                .Select(l => JsonDocument.Parse(l).RootElement.Clone())
                .ToList();
            if (lines.Count >= count || DateTime.UtcNow > deadline)
            {
                return lines;
            }

            await Task.Delay(100);
        }
    }
}
