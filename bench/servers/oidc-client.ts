/** The one client and resource the oidc-provider comparison server knows (shared with the driver). */
export const OIDC_CLIENT = { id: 'bench', secret: 'bench-secret' } as const;
export const OIDC_RESOURCE = 'https://api.example';
