// The devnet's state file format: @ton/sandbox's serialisable snapshot, with every transaction kept
// as the exact cell the emulator produced.
//
// Why not the sandbox's own serialisation alone: it stores each transaction re-encoded from its
// parsed fields (`storeTransaction`), and that re-encoding is not always the original layout (a
// message's state init or body inline instead of in a reference). Such a transaction reloads with
// another hash, while the parent/children links, written with the original hashes, no longer find it:
// the load leaves `undefined` children and the next save throws. Clients would also see other
// transaction and message hashes after a restart than before it.
import {
    BlockchainSnapshot,
    BlockchainTransaction,
    snapshotFromSerializable,
    snapshotToSerializable,
} from '@ton/sandbox';

export type SerializableSnapshot = ReturnType<typeof snapshotToSerializable>;

/** A snapshot in its serialisable form, each transaction as its original BoC. */
export function snapshotToState(snapshot: BlockchainSnapshot): SerializableSnapshot {
    const serial = snapshotToSerializable(snapshot);
    snapshot.transactions.forEach((tx, i) => {
        // `raw` is the cell the emulator returned; its hash is the transaction's hash.
        if (tx.raw) serial.transactions[i].transaction = tx.raw.toBoc().toString('base64');
    });
    return serial;
}

/**
 * Loads a state file's snapshot. Files written before transactions were kept exactly may name
 * parents and children by hashes no loaded transaction has: those links are dropped (the devnet
 * never reads them; the accounts and the transactions themselves are intact) and counted.
 */
export function snapshotFromState(serial: SerializableSnapshot): { snapshot: BlockchainSnapshot; droppedLinks: number } {
    const snapshot = snapshotFromSerializable(serial);
    let droppedLinks = 0;
    snapshot.transactions.forEach((tx: BlockchainTransaction, i) => {
        const known = tx.children.filter((child) => child !== undefined);
        droppedLinks += tx.children.length - known.length;
        tx.children = known;
        if (serial.transactions[i].parentHash && tx.parent === undefined) droppedLinks += 1;
    });
    return { snapshot, droppedLinks };
}
