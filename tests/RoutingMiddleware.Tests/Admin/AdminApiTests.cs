using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Admin;

/// <summary>Issue 6: every admin operation through HTTP on the real host, with auth failures and validation errors.</summary>
public sealed class AdminApiTests : IAsyncLifetime, IDisposable
{
    private readonly TempDirectory _dir = new();
    private TestBackend _backend = null!;
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        _backend = await TestBackend.StartAsync("b");
        _gateway = await StartGatewayAsync(AdminSection(_dir.File("state.json")));
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _backend.DisposeAsync();
    }

    public void Dispose() => _dir.Dispose();

    private Task<TestGateway> StartGatewayAsync(JsonObject modelRouting, params string[] args) =>
        TestGateway.StartAsync(
            TestGateway.Config(
                new Dictionary<string, string[]> { ["pool"] = [_backend.Url], ["other"] = [_backend.Url] },
                [
                    TestGateway.Endpoint("base", "pool", maxContext: 8192, isDefault: true, aliases: "gpt"),
                    E2EHelpers.Endpoint("org/model:sql", "pool", "org/model", adapter: "sql"),
                ],
                modelRouting),
            args);

    [Fact]
    public async Task NoKeyConfigured_AdminApiIsOff_404()
    {
        await using var gateway = await StartGatewayAsync(AdminSection(_dir.File("state2.json"), key: null));

        var result = await gateway.AdminAsync(HttpMethod.Get, "/admin/endpoints");

        Assert.Equal(HttpStatusCode.NotFound, result.Status);
        Assert.False(result.Response.Headers.Contains("WWW-Authenticate"));
        Assert.Equal("application/json", result.Response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(result.Body!["error"]);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong-key")]
    [InlineData("test-admin-key-0123456789x")]
    [InlineData("")]
    public async Task MissingOrWrongKey_Returns401OpenAIError(string? key)
    {
        foreach (var (method, path) in new[] { (HttpMethod.Get, "/admin/endpoints"), (HttpMethod.Put, EndpointPath("x")), (HttpMethod.Delete, EndpointPath("base")), (HttpMethod.Put, "/admin/default") })
        {
            var result = await _gateway.AdminAsync(method, path, method == HttpMethod.Get ? null : new JsonObject { ["Cluster"] = "pool" }, key);

            Assert.Equal(HttpStatusCode.Unauthorized, result.Status);
            Assert.Equal("Bearer", result.Response.Headers.WwwAuthenticate.Single().Scheme);
            Assert.Equal("application/json", result.Response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("invalid_api_key", result.Body!["error"]!["code"]!.GetValue<string>());
        }

        // Nothing changed.
        Assert.Equal(HttpStatusCode.OK, await _gateway.ChatStatusAsync("base"));
    }

    [Fact]
    public async Task WrongScheme_Returns401()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/endpoints");
        request.Headers.TryAddWithoutValidation("Authorization", "Basic " + Key);
        using var response = await _gateway.ManagementClient.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task List_ShowsStatusClusterContextAliasesAndSource()
    {
        Assert.Equal(HttpStatusCode.Created, (await _gateway.AdminAsync(HttpMethod.Put, EndpointPath("rt"), Definition("other", maxContext: 2048))).Status);

        var (status, body, _) = await _gateway.AdminAsync(HttpMethod.Get, "/admin/endpoints");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("list", body!["object"]!.GetValue<string>());
        Assert.Equal("base", body["default"]!.GetValue<string>());
        var data = body["data"]!.AsArray();
        Assert.Equal(["base", "org/model:sql", "rt"], data.Select(e => e!["id"]!.GetValue<string>()));
        var b = data[0]!;
        Assert.Equal("ready", b["status"]!.GetValue<string>());
        Assert.Equal("pool", b["cluster"]!.GetValue<string>());
        Assert.Equal(8192, b["max_context_length"]!.GetValue<int>());
        Assert.Equal(["gpt"], b["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("configuration", b["source"]!.GetValue<string>());
        Assert.True(b["is_default"]!.GetValue<bool>());
        Assert.Equal("runtime", data[2]!["source"]!.GetValue<string>());
        Assert.Equal(2048, data[2]!["max_context_length"]!.GetValue<int>());
        Assert.Equal("other", data[2]!["cluster"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/admin/endpoints/org%2Fmodel%3Asql")]
    [InlineData("/admin/endpoints/org/model:sql")]
    public async Task Get_IdWithSlashAndColon_Found(string path)
    {
        var (status, body, _) = await _gateway.AdminAsync(HttpMethod.Get, path);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("org/model:sql", body!["id"]!.GetValue<string>());
        Assert.Equal("sql", body["adapter"]!.GetValue<string>());
    }

    [Fact]
    public async Task Get_Unknown_Returns404ModelNotFound()
    {
        var (status, body, _) = await _gateway.AdminAsync(HttpMethod.Get, EndpointPath("nope"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("model_not_found", body!["error"]!["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task Put_New_Returns201_AndServesTraffic_ThenReplace_Returns200()
    {
        var id = "org/new:lora";
        var created = await _gateway.AdminAsync(HttpMethod.Put, EndpointPath(id), Definition("pool", baseModel: "org/new", adapter: "lora", maxContext: 1000, "new-alias"));
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal("runtime", created.Body!["source"]!.GetValue<string>());
        var createdAt = created.Body["created"]!.GetValue<long>();

        using (var response = await _gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("new-alias")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(id, response.Headers.GetValues("x-gateway-endpoint").Single());
            Assert.Equal("lora", _backend.Requests.Last().Model);
        }

        var replaced = await _gateway.AdminAsync(HttpMethod.Put, EndpointPath(id), Definition("pool", baseModel: "org/new", adapter: "lora2", maxContext: 3000));
        Assert.Equal(HttpStatusCode.OK, replaced.Status);
        Assert.Equal(3000, replaced.Body!["max_context_length"]!.GetValue<int>());
        Assert.Equal(createdAt, replaced.Body["created"]!.GetValue<long>());

        // Seed semantics: replacing keeps the aliases.
        Assert.Equal(["new-alias"], replaced.Body["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal(HttpStatusCode.OK, await _gateway.ChatStatusAsync("new-alias"));
        Assert.Equal("lora2", _backend.Requests.Last().Model);
    }

    [Fact]
    public async Task Put_ReplacesConfigurationEndpoint_SourceBecomesRuntime()
    {
        var result = await _gateway.AdminAsync(HttpMethod.Put, EndpointPath("base"), Definition("other", maxContext: 100));

        Assert.Equal(HttpStatusCode.OK, result.Status);
        Assert.Equal("runtime", result.Body!["source"]!.GetValue<string>());
        Assert.Equal(100, result.Body["max_context_length"]!.GetValue<int>());
        Assert.True(result.Body["is_default"]!.GetValue<bool>());
    }

    public static TheoryData<string, string, string[]> InvalidDefinitions => new()
    {
        { """{"Cluster":"no-such-cluster"}""", "Cluster", ["no-such-cluster"] },
        { """{}""", "Cluster", ["required"] },
        { """{"Cluster":"pool","MaxContextLength":-5}""", "MaxContextLength", ["-5"] },
        { """{"Cluster":"pool","Status":"Sleeping"}""", "Status", ["Sleeping"] },
        { """{"Cluster":"pool","Adapter":" "}""", "Adapter", [] },
        { """{"Cluster":"pool","Adapters":[{"Name":"a","Weight":-1}]}""", "Adapters", [] },
        { """{"Cluster":"pool","TokenEncoding":"p50k"}""", "TokenEncoding", ["p50k"] },
        { """{"Cluster":"pool","TokenEstimation":{"Mode":"Exact"}}""", "TokenEstimation", ["Exact", "Backend"] },
        { """{"Cluster":"pool","Aliases":["gpt"]}""", "Aliases", ["gpt", "base"] },
        { """{"Cluster":"pool","Aliases":["base"]}""", "Aliases", ["base"] },
        { """{"Cluster":"pool","Aliases":[""]}""", "Aliases", ["non-empty"] },
        { """{"Cluster":"pool","Id":"other-id"}""", "Id", ["other-id"] },
        { """{"Cluster":"pool","MaxContextLenght":5}""", "MaxContextLenght", [] },
        { """{"Cluster":"pool","MaxContextLength":"big"}""", "MaxContextLength", [] },
        { """{"Cluster":"pool","Fallbacks":["nope"]}""", "Fallbacks", ["nope"] },
        { """{"Cluster":"pool","Fallbacks":["newcomer"]}""", "Fallbacks", ["itself"] },
        { """[1]""", "JSON object", [] },
        { """{not json""", "JSON", [] },
    };

    [Theory]
    [MemberData(nameof(InvalidDefinitions))]
    public async Task Put_Invalid_Returns400NamingTheField_AndChangesNothing(string body, string field, string[] mentions)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, EndpointPath("newcomer"))
        {
            Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Key);
        using var response = await _gateway.ManagementClient.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        AssertBadRequest((response.StatusCode, JsonNode.Parse(text), response), field, mentions);
        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.AdminAsync(HttpMethod.Get, EndpointPath("newcomer"))).Status);
        Assert.False(File.Exists(_dir.File("state.json")), "a refused change must not be persisted");
    }

    [Fact]
    public async Task Put_IdThatIsAnAlias_Returns400()
    {
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, EndpointPath("gpt"), Definition("pool")), "Id", "gpt");
    }

    [Fact]
    public async Task Delete_ClearsDefaultAndAliases_SeedSemantics()
    {
        var (status, body, _) = await _gateway.AdminAsync(HttpMethod.Delete, EndpointPath("base"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body!["deleted"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.NotFound, await _gateway.ChatStatusAsync("base"));
        Assert.Equal(HttpStatusCode.NotFound, await _gateway.ChatStatusAsync("gpt"));
        using var noModel = await _gateway.PostRawAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""");
        await E2EHelpers.AssertErrorAsync(noModel, HttpStatusCode.BadRequest, "invalid_request_error", "missing_model");
        var list = (await _gateway.AdminAsync(HttpMethod.Get, "/admin/endpoints")).Body!;
        Assert.Null(list["default"]);
        Assert.Empty(list["aliases"]!.AsObject());

        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.AdminAsync(HttpMethod.Delete, EndpointPath("base"))).Status);
    }

    [Fact]
    public async Task Delete_RuntimeEndpoint_Unregisters()
    {
        Assert.Equal(HttpStatusCode.Created, (await _gateway.AdminAsync(HttpMethod.Put, EndpointPath("a/b:c"), Definition("pool"))).Status);
        Assert.Equal(HttpStatusCode.OK, await _gateway.ChatStatusAsync("a/b:c"));

        Assert.Equal(HttpStatusCode.OK, (await _gateway.AdminAsync(HttpMethod.Delete, "/admin/endpoints/a%2Fb%3Ac")).Status);

        Assert.Equal(HttpStatusCode.NotFound, await _gateway.ChatStatusAsync("a/b:c"));
    }

    [Theory]
    [InlineData("Disabled", "disabled")]
    [InlineData("loading", "loading")]
    [InlineData("ERROR", "error")]
    public async Task SetStatus_TakesEffect_AndReadyRestores(string status, string wire)
    {
        var result = await _gateway.AdminAsync(HttpMethod.Put, "/admin/status/base", new JsonObject { ["status"] = status });
        Assert.Equal(HttpStatusCode.OK, result.Status);
        Assert.Equal(wire, result.Body!["status"]!.GetValue<string>());

        using (var response = await _gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("gpt")))
        {
            await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "model_not_ready");
        }

        Assert.Equal(HttpStatusCode.OK, (await _gateway.AdminAsync(HttpMethod.Put, "/admin/status/base", new JsonObject { ["status"] = "Ready" })).Status);
        Assert.Equal(HttpStatusCode.OK, await _gateway.ChatStatusAsync("gpt"));
    }

    [Fact]
    public async Task SetStatus_Invalid_Returns400_Unknown_Returns404()
    {
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/status/base", new JsonObject { ["status"] = "Sleeping" }), "Status", "Sleeping");
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/status/base", new JsonObject()), "Status");
        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.AdminAsync(HttpMethod.Put, "/admin/status/nope", new JsonObject { ["status"] = "Ready" })).Status);
    }

    [Fact]
    public async Task Aliases_AddMoveRemove()
    {
        // Add.
        var added = await _gateway.AdminAsync(HttpMethod.Put, "/admin/aliases/team%2Fsql", new JsonObject { ["target"] = "org/model:sql" });
        Assert.Equal(HttpStatusCode.OK, added.Status);
        using (var response = await _gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("team/sql")))
        {
            Assert.Equal("org/model:sql", response.Headers.GetValues("x-gateway-endpoint").Single());
        }

        // Move (shift traffic).
        Assert.Equal(HttpStatusCode.OK, (await _gateway.AdminAsync(HttpMethod.Put, "/admin/aliases/team%2Fsql", new JsonObject { ["target"] = "base" })).Status);
        using (var response = await _gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("team/sql")))
        {
            Assert.Equal("base", response.Headers.GetValues("x-gateway-endpoint").Single());
        }

        var aliases = (await _gateway.AdminAsync(HttpMethod.Get, "/admin/aliases")).Body!.AsObject();
        Assert.Equal("base", aliases["team/sql"]!.GetValue<string>());

        // Remove.
        Assert.Equal(HttpStatusCode.OK, (await _gateway.AdminAsync(HttpMethod.Delete, "/admin/aliases/team%2Fsql")).Status);
        Assert.Equal(HttpStatusCode.NotFound, await _gateway.ChatStatusAsync("team/sql"));
        Assert.Equal(HttpStatusCode.NotFound, (await _gateway.AdminAsync(HttpMethod.Delete, "/admin/aliases/team%2Fsql")).Status);

        // A configuration alias can be removed too.
        Assert.Equal(HttpStatusCode.OK, (await _gateway.AdminAsync(HttpMethod.Delete, "/admin/aliases/gpt")).Status);
        Assert.Equal(HttpStatusCode.NotFound, await _gateway.ChatStatusAsync("gpt"));
    }

    [Fact]
    public async Task Aliases_Invalid_Return400NamingTheField()
    {
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/aliases/x", new JsonObject { ["target"] = "nope" }), "target", "nope");
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/aliases/base", new JsonObject { ["target"] = "org/model:sql" }), "Aliases", "base");
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/aliases/x", new JsonObject()), "Target");
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/aliases/x", new JsonArray()), "JSON object");
    }

    [Fact]
    public async Task Default_SetClearAndInvalid()
    {
        Assert.Equal(HttpStatusCode.OK, (await _gateway.AdminAsync(HttpMethod.Put, "/admin/default", new JsonObject { ["id"] = "org/model:sql" })).Status);
        using (var response = await _gateway.PostRawAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}"""))
        {
            Assert.Equal("org/model:sql", response.Headers.GetValues("x-gateway-endpoint").Single());
        }

        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/default", new JsonObject { ["id"] = "nope" }), "Default", "nope");
        AssertBadRequest(await _gateway.AdminAsync(HttpMethod.Put, "/admin/default", new JsonObject()), "Id");

        Assert.Equal(HttpStatusCode.OK, (await _gateway.AdminAsync(HttpMethod.Put, "/admin/default", new JsonObject { ["id"] = null })).Status);
        using var noModel = await _gateway.PostRawAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""");
        await E2EHelpers.AssertErrorAsync(noModel, HttpStatusCode.BadRequest, "invalid_request_error", "missing_model");
    }

    [Fact]
    public async Task AdminApi_OnManagementListener_Answers()
    {
        var management = _gateway.ManagementClient.BaseAddress!;

        Assert.NotEqual(management.Port, _gateway.BaseAddress.Port);
        Assert.Equal(HttpStatusCode.OK, (await _gateway.ManagementClient.AdminAsync(HttpMethod.Get, "/admin/endpoints")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await _gateway.ManagementClient.AdminAsync(HttpMethod.Get, "/admin/endpoints", key: null)).Status);
    }

    [Theory]
    [InlineData(Key, false)]
    [InlineData(Key, true)]
    [InlineData(null, false)]
    [InlineData("wrong-key", true)]
    public async Task AdminApi_OnPublicListener_Returns404_WhateverTheKeyOrHostHeader(string? key, bool spoofHost)
    {
        foreach (var (method, path) in new[] { (HttpMethod.Get, "/admin/endpoints"), (HttpMethod.Get, EndpointPath("base")), (HttpMethod.Delete, EndpointPath("base")), (HttpMethod.Put, "/admin/default") })
        {
            using var request = new HttpRequestMessage(method, path);
            if (key is not null)
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            }

            if (spoofHost)
            {
                request.Headers.Host = _gateway.ManagementClient.BaseAddress!.Authority;
            }

            if (method != HttpMethod.Get)
            {
                request.Content = new StringContent("""{"id":null}""", System.Text.Encoding.UTF8, "application/json");
            }

            using var response = await _gateway.Client.SendAsync(request);

            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.False(response.Headers.Contains("WWW-Authenticate"));
            var (code, type, _) = await TestGateway.ReadErrorAsync(response);
            Assert.Equal("not_found", code);
            Assert.Equal("invalid_request_error", type);
        }

        // Nothing changed: the default is still in force.
        using var noModel = await _gateway.PostRawAsync("/v1/chat/completions", """{"messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal("base", noModel.Headers.GetValues("x-gateway-endpoint").Single());
    }

    [Theory]
    [InlineData("POST", "/admin/endpoints")]
    [InlineData("PATCH", "/admin/default")]
    [InlineData("GET", "/admin/no-such-call")]
    [InlineData("GET", "/admin")]
    public async Task UnknownAdminCall_Returns404OpenAIError_OnBothListeners(string method, string path)
    {
        foreach (var client in new[] { _gateway.Client, _gateway.ManagementClient })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Key);

            using var response = await client.SendAsync(request);

            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("not_found", (await TestGateway.ReadErrorAsync(response)).Code);
        }
    }

    [Fact]
    public async Task ManagementListener_DoesNotServeTheProxy_ButAnswersHealth()
    {
        var before = _backend.Requests.Count;

        using var chat = await _gateway.ManagementClient.PostAsync("/v1/chat/completions", new StringContent(E2EHelpers.Chat("base"), System.Text.Encoding.UTF8, "application/json"));
        using var models = await _gateway.ManagementClient.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.NotFound, chat.StatusCode);
        Assert.Equal("not_found", (await TestGateway.ReadErrorAsync(chat)).Code);
        Assert.Equal(HttpStatusCode.NotFound, models.StatusCode);
        Assert.Equal(before, _backend.Requests.Count);
        Assert.Equal(HttpStatusCode.OK, (await _gateway.ManagementClient.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _gateway.ManagementClient.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task AuthServices_AdminSchemeIsNeverTheDefault_AndNoFallbackPolicy()
    {
        var schemes = _gateway.Services.GetRequiredService<Microsoft.AspNetCore.Authentication.IAuthenticationSchemeProvider>();
        var policies = _gateway.Services.GetRequiredService<Microsoft.AspNetCore.Authorization.IAuthorizationPolicyProvider>();

        Assert.Null(await schemes.GetDefaultAuthenticateSchemeAsync());
        Assert.NotNull(await schemes.GetSchemeAsync("ModelRoutingAdmin"));
        Assert.Null(await policies.GetFallbackPolicyAsync());
        Assert.NotNull(await policies.GetPolicyAsync("ModelRoutingAdmin"));
    }

    [Fact]
    public async Task ProxyRoutes_DoNotUseTheAdminScheme()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(E2EHelpers.Chat("base"), System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "not-the-admin-key");

        using var response = await _gateway.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ManagementUrls_Port0_RefusedAtStartUp()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => StartGatewayAsync(AdminSection(_dir.File("state2.json"), "http://127.0.0.1:0")));

        Assert.True(ProxyHost.GatewayApp.IsStartupError(e), e.ToString());
        Assert.Contains("http://127.0.0.1:0", e.Message);
        Assert.Contains("ModelRouting:Admin:Urls", e.Message);
    }

    [Fact]
    public async Task ManagementUrls_PublicPort_RefusedAtStartUp_NamingBoth()
    {
        var url = ManagementUrl();

        var e = await Assert.ThrowsAnyAsync<Exception>(() => StartGatewayAsync(AdminSection(_dir.File("state2.json"), url + "/"), "--urls", url));

        Assert.True(ProxyHost.GatewayApp.IsStartupError(e), e.ToString());
        Assert.Contains("ModelRouting:Admin:Urls", e.Message);
        Assert.Contains($"'{url}/'", e.Message);
        Assert.Contains($"'{url}'", e.Message);
    }

    [Fact]
    public async Task StateFileNotWritable_Returns503StateNotSaved_AndAppliesNothing()
    {
        // Tests may run as root, where permissions do not stop a write: the state file's folder is a regular file.
        var blocker = _dir.File("not-a-folder");
        await File.WriteAllTextAsync(blocker, "");
        var state = Path.Combine(blocker, "state.json");
        await using var gateway = await StartGatewayAsync(AdminSection(state));

        foreach (var (method, path, body) in new (HttpMethod, string, JsonNode?)[]
        {
            (HttpMethod.Put, EndpointPath("newcomer"), Definition("pool")),
            (HttpMethod.Put, "/admin/default", new JsonObject { ["id"] = "org/model:sql" }),
            (HttpMethod.Delete, EndpointPath("base"), null),
            (HttpMethod.Put, "/admin/aliases/gpt", new JsonObject { ["target"] = "org/model:sql" }),
        })
        {
            var result = await gateway.AdminAsync(method, path, body);

            Assert.Equal(HttpStatusCode.ServiceUnavailable, result.Status);
            Assert.Equal("server_error", result.Body!["error"]!["type"]!.GetValue<string>());
            Assert.Equal("state_not_saved", result.Body["error"]!["code"]!.GetValue<string>());
            var message = result.Body["error"]!["message"]!.GetValue<string>();
            Assert.Contains("not saved", message);
            Assert.Contains(state, message);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("newcomer"))).Status);
        Assert.Equal(HttpStatusCode.NotFound, await gateway.ChatStatusAsync("newcomer"));
        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("gpt"));
        Assert.Equal("base", response.Headers.GetValues("x-gateway-endpoint").Single());
        var list = (await gateway.AdminAsync(HttpMethod.Get, "/admin/endpoints")).Body!;
        Assert.Equal("base", list["default"]!.GetValue<string>());
        Assert.Equal("configuration", list["default_source"]!.GetValue<string>());
    }
}
