/** snappyjs ships no types; these are the two functions of its API this project uses. */
declare module 'snappyjs' {
  /** Snappy block (raw, unframed) format, as Loki's push API expects. */
  export function compress<T extends Uint8Array>(input: T): T;
  export function uncompress<T extends Uint8Array>(input: T, maxLength?: number): T;
}
