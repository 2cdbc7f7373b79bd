using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using ModelRouting.Tests.Admin;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;
using static ModelRouting.Tests.Keys.ClientKeyTests;

namespace ModelRouting.Tests.Keys;

/// <summary>SPEC §14: keys managed through the admin API, in force without a restart, persisted with the runtime state.</summary>
public sealed class KeyAdminTests
{
    private static JsonObject Deployment(TestBackend pool, string stateFile, JsonArray? keys = null)
    {
        var modelRouting = AdminTestSupport.AdminSection(stateFile);
        modelRouting["Keys"] = keys ?? [Key("ops", "sk-ops", ["*"])];
        return TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [pool.Url] },
            [TestGateway.Endpoint("a", "pool", isDefault: true), TestGateway.Endpoint("b", "pool")],
            modelRouting);
    }

    private static async Task<HttpStatusCode> ChatAsync(TestGateway gateway, string secret, string model)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(E2EHelpers.Chat(model), Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        using var response = await gateway.Client.SendAsync(request);
        return response.StatusCode;
    }

    [Fact]
    public async Task Create_Use_List_Change_Disable_Delete_WithoutRestart_AndKeptAcrossARestart()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        using var dir = E2EHelpers.TempDir();
        var stateFile = dir.File("state.json");
        string secret;
        await using (var gateway = await TestGateway.StartAsync(Deployment(pool, stateFile)))
        {
            var admin = gateway.ManagementClient;
            var (status, created, _) = await admin.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject
            {
                ["Id"] = "team-b",
                ["Models"] = new JsonArray("a"),
                ["Limits"] = new JsonObject { ["RequestsPerMinute"] = 100 },
            });
            Assert.Equal(HttpStatusCode.Created, status);
            secret = created!["key"]!.GetValue<string>();
            Assert.StartsWith("sk-gw-", secret, StringComparison.Ordinal);

            Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, secret, "a"));
            Assert.Equal(HttpStatusCode.NotFound, await ChatAsync(gateway, secret, "b"));

            // Listed without the secret (nor its hash); the state file holds only the hash.
            var (_, list, listResponse) = await admin.AdminAsync(HttpMethod.Get, "/admin/keys");
            var text = await listResponse.Content.ReadAsStringAsync();
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            Assert.Equal(["ops", "team-b"], list!["data"]!.AsArray().Select(k => k!["id"]!.GetValue<string>()).Order(StringComparer.Ordinal));
            Assert.DoesNotContain(secret, await File.ReadAllTextAsync(stateFile), StringComparison.Ordinal);

            (status, _, _) = await admin.AdminAsync(HttpMethod.Patch, "/admin/keys/team-b", new JsonObject { ["Models"] = new JsonArray("a", "b") });
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, secret, "b"));

            (status, _, _) = await admin.AdminAsync(HttpMethod.Patch, "/admin/keys/team-b", new JsonObject { ["Enabled"] = false });
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(gateway, secret, "a"));
            (status, _, _) = await admin.AdminAsync(HttpMethod.Patch, "/admin/keys/team-b", new JsonObject { ["Enabled"] = true });
            Assert.Equal(HttpStatusCode.OK, status);
        }

        // A restart keeps the key (its hash is in the state file).
        await using (var gateway = await TestGateway.StartAsync(Deployment(pool, stateFile)))
        {
            Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, secret, "b"));
            var (status, _, _) = await gateway.ManagementClient.AdminAsync(HttpMethod.Delete, "/admin/keys/team-b");
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(gateway, secret, "a"));
            (status, _, _) = await gateway.ManagementClient.AdminAsync(HttpMethod.Get, "/admin/keys/team-b");
            Assert.Equal(HttpStatusCode.NotFound, status);
        }
    }

    [Fact]
    public async Task KeysFromAdmin_CloseAnOpenGateway()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        using var dir = E2EHelpers.TempDir();
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, dir.File("state.json"), keys: []));
        using (var open = await gateway.Client.PostAsync("/v1/chat/completions", new StringContent(E2EHelpers.Chat("a"), Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        }

        var (status, created, _) = await gateway.ManagementClient.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Models"] = new JsonArray("*") });
        Assert.Equal(HttpStatusCode.Created, status);
        Assert.StartsWith("key-", created!["id"]!.GetValue<string>(), StringComparison.Ordinal);
        using (var closed = await gateway.Client.PostAsync("/v1/chat/completions", new StringContent(E2EHelpers.Chat("a"), Encoding.UTF8, "application/json")))
        {
            await E2EHelpers.AssertErrorAsync(closed, HttpStatusCode.Unauthorized, "invalid_request_error", "invalid_api_key");
        }

        Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, created["key"]!.GetValue<string>(), "a"));
    }

    [Fact]
    public async Task BadDefinitions_Are400NamingTheField_ConfigurationKeys_Are409_Duplicates_Are409()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        using var dir = E2EHelpers.TempDir();
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, dir.File("state.json")));
        var admin = gateway.ManagementClient;

        var (status, body, _) = await admin.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Models"] = new JsonArray("nope") });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("Models[0]", body!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        (status, body, _) = await admin.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Models"] = new JsonArray("*"), ["Limits"] = new JsonObject { ["TokensPerMinute"] = -5 } });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("Limits:TokensPerMinute", body!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        (status, _, _) = await admin.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Models"] = new JsonArray("*"), ["Unknown"] = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, status);

        (status, _, _) = await admin.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Id"] = "ops", ["Models"] = new JsonArray("*") });
        Assert.Equal(HttpStatusCode.Conflict, status);

        (status, body, _) = await admin.AdminAsync(HttpMethod.Patch, "/admin/keys/ops", new JsonObject { ["Enabled"] = false });
        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Contains("configuration", body!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        (status, _, _) = await admin.AdminAsync(HttpMethod.Delete, "/admin/keys/nobody");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }
}
