using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Configuration;

namespace ModelRouting.Observability;

/// <summary>
/// The live status page (SPEC §15): <c>/status</c> is one self-contained HTML file embedded in this library (its
/// script and styles inline, charts drawn on canvas by hand: no CDN, no build step), which polls
/// <c>/status/data</c> for <see cref="StatusReport"/>'s JSON.
/// </summary>
internal static class StatusEndpoints
{
    private const string ResourceName = "ModelRouting.Observability.status.html";

    // Only what the page itself holds may run or load: inline script and styles, requests to this origin.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; frame-ancestors 'none'";

    private static readonly Lazy<byte[]> s_page = new(LoadPage);

    public static Task PageAsync(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/html; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers.XContentTypeOptions = "nosniff";
        var page = s_page.Value;
        response.ContentLength = page.Length;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(page, context.RequestAborted).AsTask();
    }

    public static async Task DataAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var registry = services.GetRequiredService<ModelRegistrySource>().Current.Router.Registry;
        var window = services.GetRequiredService<StatusWindow>();
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var response = context.Response;
        response.ContentType = "application/json";
        response.Headers.CacheControl = "no-store";
        await using (var writer = new Utf8JsonWriter(response.BodyWriter))
        {
            StatusReport.Write(writer, registry, window, now);
        }

        await response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    private static byte[] LoadPage()
    {
        using var stream = typeof(StatusEndpoints).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The status page resource '{ResourceName}' is missing from the assembly.");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
