using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Adapters;

/// <summary>
/// A vLLM-shaped backend on a loopback port: <c>GET /v1/models</c> lists the base model and the loaded adapters,
/// <c>POST /v1/load_lora_adapter</c> / <c>unload_lora_adapter</c> change them, chat completions answer 404 for a
/// model that is not loaded. With <see cref="RequiredKey"/> every call needs <c>Authorization: Bearer &lt;key&gt;</c>
/// (like <c>vllm serve --api-key</c>). <see cref="RestartAsync"/> stops it and starts a fresh one on the same port,
/// which has forgotten its adapters.
/// </summary>
internal sealed class FakeVllm : IAsyncDisposable
{
    public const string BaseModel = "Qwen/Qwen3-8B";

    private TestBackend _backend = null!;

    private FakeVllm(string name, string? requiredKey)
    {
        Name = name;
        RequiredKey = requiredKey;
    }

    public string Name { get; }

    public string? RequiredKey { get; }

    public string Url => _backend.Url;

    /// <summary>Gets the loaded adapters (name → path).</summary>
    public ConcurrentDictionary<string, string> Adapters { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets every request received, across restarts.</summary>
    public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

    /// <summary>Gets or sets a gate every load waits for (to hold an adapter off one destination).</summary>
    public TaskCompletionSource? LoadGate { get; set; }

    public int Loads(string adapter) => Requests.Count(r => r.Path == "/v1/load_lora_adapter" && JsonNode.Parse(r.Body)?["lora_name"]?.GetValue<string>() == adapter);

    public int Chats(string model) => Requests.Count(r => r.Path == "/v1/chat/completions" && r.Model == model);

    public static async Task<FakeVllm> StartAsync(string name, string? requiredKey = null)
    {
        var vllm = new FakeVllm(name, requiredKey);
        vllm._backend = await TestBackend.StartAsync(name, vllm.HandleAsync);
        return vllm;
    }

    /// <summary>Stops the server and starts a new one on the same address with no adapters loaded.</summary>
    public async Task RestartAsync()
    {
        var url = Url;
        await _backend.DisposeAsync();
        Adapters.Clear();
        _backend = await TestBackend.StartAsync(Name, HandleAsync, url);
    }

    public ValueTask DisposeAsync()
    {
        LoadGate?.TrySetResult();
        return _backend.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context, RecordedRequest request)
    {
        Requests.Enqueue(request);
        if (RequiredKey is not null && request.Headers.GetValueOrDefault("Authorization") != "Bearer " + RequiredKey)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            await context.Response.WriteAsJsonAsync(new { error = "Unauthorized" });
            return;
        }

        switch (request.Path)
        {
            case "/v1/models":
                var data = new JsonArray { new JsonObject { ["id"] = BaseModel, ["object"] = "model", ["parent"] = null, ["max_model_len"] = 40960 } };
                foreach (var adapter in Adapters.Keys)
                {
                    data.Add(new JsonObject { ["id"] = adapter, ["object"] = "model", ["parent"] = BaseModel, ["max_model_len"] = null });
                }

                await context.Response.WriteAsync(new JsonObject { ["object"] = "list", ["data"] = data }.ToJsonString());
                return;
            case "/v1/load_lora_adapter":
                if (LoadGate is { } gate)
                {
                    await gate.Task.WaitAsync(context.RequestAborted);
                }

                var load = JsonNode.Parse(request.Body)!;
                var name = load["lora_name"]!.GetValue<string>();
                if (!Adapters.TryAdd(name, load["lora_path"]!.GetValue<string>()))
                {
                    context.Response.StatusCode = StatusCodes.Status400BadRequest;
                    await context.Response.WriteAsJsonAsync(new { message = $"The lora adapter '{name}' has already been loaded." });
                    return;
                }

                await context.Response.WriteAsync("Success: LoRA adapter '" + name + "' added successfully.");
                return;
            case "/v1/unload_lora_adapter":
                Adapters.TryRemove(JsonNode.Parse(request.Body)!["lora_name"]!.GetValue<string>(), out _);
                await context.Response.WriteAsync("Success");
                return;
            default:
                var model = request.Model;
                if (model != BaseModel && (model is null || !Adapters.ContainsKey(model)))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    await context.Response.WriteAsJsonAsync(new { error = new { message = $"The model `{model}` does not exist.", code = 404 } });
                    return;
                }

                await context.Response.WriteAsJsonAsync(new { model, backend = Name });
                return;
        }
    }
}
