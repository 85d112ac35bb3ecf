/** The part of s3rver's API the S3 test server uses (the package ships no types). */
declare module 's3rver' {
  import type { IncomingMessage } from 'node:http';

  interface S3Object {
    bucket: string;
    key: string;
    content: IncomingMessage | Buffer;
  }
  interface Store {
    putObject(object: S3Object): Promise<{ md5: string; size: number }>;
    existsObject(bucket: string, key: string): Promise<boolean>;
  }
  export default class S3rver {
    constructor(options: {
      port?: number;
      address?: string;
      silent?: boolean;
      directory: string;
      configureBuckets?: Array<{ name: string }>;
      resetOnClose?: boolean;
    });
    store: Store;
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
