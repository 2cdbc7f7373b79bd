using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §12 with a real backend that records what reaches it: paths off the client surface and backend
/// management paths answer 404 <c>unknown_path</c> and the backend records nothing.
/// </summary>
public sealed class ClientSurfaceTests
{
    [Fact]
    public async Task UnknownAndManagementPaths_NeverReachTheBackend()
    {
        await using var backend = await TestBackend.StartAsync("b");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["c"] = [backend.Url] },
            [TestGateway.Endpoint("m", "c", isDefault: true)],
            new JsonObject { ["PassThroughPaths"] = new JsonArray("/v1/files/*") }));
        (HttpMethod Method, string Path)[] refused =
        [
            (HttpMethod.Post, "/v1/load_lora_adapter"),
            (HttpMethod.Post, "/v1/unload_lora_adapter"),
            (HttpMethod.Post, "/v1/Load_LoRA_Adapter/"),
            (HttpMethod.Post, "/v1/files/x%2F..%2F..%2Fload_lora_adapter"),
            (HttpMethod.Get, "/v1/files"),
            (HttpMethod.Post, "/v1/fine_tuning/jobs"),
            (HttpMethod.Get, "/v1/chat/completions"),
            (HttpMethod.Get, "/metrics"),
            (HttpMethod.Post, "/sleep"),
            (HttpMethod.Get, "/admin/endpoints"),
        ];

        foreach (var (method, path) in refused)
        {
            using var request = new HttpRequestMessage(method, path) { Content = new StringContent("""{"lora_name":"x","lora_path":"/x"}""", Encoding.UTF8, "application/json") };
            using var response = await gateway.Client.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode}");
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        }

        Assert.Empty(backend.Requests);

        using (var passed = await gateway.Client.GetAsync("/v1/files/file-abc"))
        {
            Assert.Equal(HttpStatusCode.OK, passed.StatusCode);
        }

        Assert.Equal("/v1/files/file-abc", Assert.Single(backend.Requests).Path);
    }

    [Fact]
    public async Task ClientValuesInLogs_AreEscapedAndCut_NeverTheClientKey()
    {
        await using var backend = await TestBackend.StartAsync("b");
        var config = TestGateway.Config(new Dictionary<string, string[]> { ["c"] = [backend.Url] }, [TestGateway.Endpoint("m", "c", isDefault: true)]);
        config["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Information" } };
        await using var gateway = await TestGateway.StartAsync(config);
        var logs = gateway.CaptureLogs();
        var model = "evil\nFORGED log line " + new string('x', 1000);

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(E2EHelpers.Chat(model), Encoding.UTF8, "application/json") })
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "sk-client-secret");
            using var refused = await gateway.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        }

        using (var unknown = await gateway.Client.GetAsync("/v1/" + new string('p', 1000) + "%0AFORGED"))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }

        var lines = logs.Entries.Select(e => e.Message).ToList();
        Assert.Contains(lines, l => l.Contains("evil\\u000a", StringComparison.OrdinalIgnoreCase));
        Assert.All(lines, l => Assert.DoesNotContain('\n', l));
        Assert.All(lines, l => Assert.True(l.Length < 800, $"a log line of {l.Length} characters"));
        Assert.All(lines, l => Assert.DoesNotContain("sk-client-secret", l, StringComparison.Ordinal));
    }
}
