namespace ModelRouting.Admin;

/// <summary>Marks an endpoint that answers only on the management listener (added by <c>RequireManagementListener()</c>).</summary>
internal sealed class ManagementListenerMetadata
{
    public static readonly ManagementListenerMetadata Instance = new();

    private ManagementListenerMetadata()
    {
    }
}
