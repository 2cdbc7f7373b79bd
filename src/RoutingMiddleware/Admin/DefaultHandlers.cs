using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelRouting.Configuration;
using ModelRouting.Errors;

namespace ModelRouting.Admin;

/// <summary>The admin API's <c>/default</c> handler: sets or clears the default endpoint at runtime.</summary>
internal sealed class DefaultHandlers(ModelRegistrySource source, ILogger<DefaultHandlers> logger)
{
    /// <summary>PUT /admin/default with <c>{"id":"…"}</c> (null clears the default).</summary>
    public async Task PutAsync(HttpContext context)
    {
        var body = await AdminRequest.ReadObjectAsync(context);
        if (body.Error is { } bodyError)
        {
            await bodyError.WriteAsync(context);
            return;
        }

        var node = body.Value!.FirstOrDefault(p => string.Equals(p.Key, "id", StringComparison.OrdinalIgnoreCase));
        if (node.Key is null || (node.Value is not null && node.Value.GetValueKind() != JsonValueKind.String))
        {
            await OpenAIError.InvalidRequest("Id: the default endpoint's id (a string, or null for no default) is required.", "id").WriteAsync(context);
            return;
        }

        var id = node.Value?.GetValue<string>();
        var change = source.Administer((administered, overlay) =>
        {
            var check = administered.SetDefault(id);
            if (!check.Succeeded)
            {
                return AdminChange.Fail(check.Error, "id");
            }

            var next = overlay.Clone();
            next.Default = DefaultOverride.Over(id, source.Configured);
            return new AdminChange(next);
        });
        if (change.Error is not null)
        {
            await OpenAIError.InvalidRequest(change.Error, change.Field).WriteAsync(context);
            return;
        }

        AdminLog.Changed(logger, "default set to", id ?? "(none)");
        await AdminResponse.WriteAsync(context, StatusCodes.Status200OK, new DefaultEntry(id));
    }
}
