// A registration kiosk in C# over the mynacard C ABI (libmynacard_ffi.so / mynacard_ffi.dll):
// a face registration of the card in the reader, then an eligibility check by face, against
// the embedded reference service of the library's `sim` feature with a simulated card behind
// the kiosk's own transmit callback. See README.md beside this file.
//
// Build and run (Mono):
//   mcs -warnaserror -langversion:7.2 -out:Kiosk.exe examples/csharp/Kiosk.cs
//   LD_LIBRARY_PATH=target/debug mono Kiosk.exe

using System;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Mynacard.Examples
{
    /// <summary>The library's status codes (MynacardStatus in mynacard.h).</summary>
    public enum Status
    {
        Ok = 0,
        NullArgument = 1,
        InvalidArgument = 2,
        BufferTooSmall = 3,
        CardRemoved = 4,
        Transport = 5,
        Card = 6,
        Service = 7,
        Panic = 8,
    }

    /// <summary>The outcome kinds this kiosk acts on (MynacardOutcomeKind; stable values).</summary>
    public enum OutcomeKind
    {
        Unknown = 0,
        Registered = 1,
        AlreadyRegistered = 2,
        Eligible = 4,
    }

    /// <summary>MynacardFlow.</summary>
    public enum Flow
    {
        FaceRegistration = 2,
        FaceEligibility = 4,
    }

    /// <summary>MynacardTerminalKind.</summary>
    public enum TerminalKind
    {
        Kiosk = 3,
    }

    /// <summary>A failed library call: its status and the handle's message.</summary>
    public sealed class MynacardException : Exception
    {
        public Status Status { get; }

        public MynacardException(string call, Status status, string detail)
            : base(detail == null ? $"{call}: {status}" : $"{call}: {status}: {detail}")
        {
            Status = status;
        }
    }

    /// <summary>UTF-8 both ways: the ABI's strings are UTF-8 on every platform, which the
    /// default string marshalling (ANSI code page on Windows) is not.</summary>
    internal static class Utf8
    {
        /// <summary>A NUL-terminated UTF-8 copy of <paramref name="s"/>.</summary>
        internal static byte[] Encode(string s)
        {
            var text = Encoding.UTF8.GetBytes(s);
            var z = new byte[text.Length + 1];
            Buffer.BlockCopy(text, 0, z, 0, text.Length);
            return z;
        }

        /// <summary>The string at <paramref name="p"/> (NUL-terminated UTF-8), or null for NULL.</summary>
        internal static string Decode(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return null;
            }
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0)
            {
                len++;
            }
            var bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }
    }

    // One SafeHandle per handle type: each frees its handle once, also when an exception
    // unwinds past it, and is never freed while a native call is using it.

    public sealed class ServiceHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public ServiceHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_sim_service_free(handle); return true; }
    }

    public sealed class SimCardHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public SimCardHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_sim_card_free(handle); return true; }
    }

    public sealed class AttestationKeyHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public AttestationKeyHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_sim_attestation_key_free(handle); return true; }
    }

    public sealed class ClientHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public ClientHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_client_free(handle); return true; }

        /// <summary>Throws unless <paramref name="status"/> is OK, with the client's message.</summary>
        internal void Check(string call, Status status)
        {
            if (status != Status.Ok)
            {
                throw new MynacardException(call, status, Utf8.Decode(Native.mynacard_client_last_error(this)));
            }
        }
    }

    public sealed class OutcomeHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        public OutcomeHandle() : base(true) { }
        protected override bool ReleaseHandle() { Native.mynacard_outcome_free(handle); return true; }

        public OutcomeKind Kind => (OutcomeKind)Native.mynacard_outcome_kind(this);
        public string KindName => Utf8.Decode(Native.mynacard_outcome_kind_name(this));
        public string RegistrationId => Utf8.Decode(Native.mynacard_outcome_registration_id(this));
        public uint ApduCount => Native.mynacard_outcome_apdu_count(this);

        /// <summary>The message for the person in <paramref name="locale"/> ("en", "ja"); the
        /// library's string is copied and freed here.</summary>
        public string Message(string locale)
        {
            IntPtr s = Native.mynacard_outcome_message(this, Utf8.Encode(locale));
            try
            {
                return Utf8.Decode(s);
            }
            finally
            {
                Native.mynacard_string_free(s);
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Transport
    {
        internal IntPtr Ctx;
        internal IntPtr Transmit;
        internal int ExtendedLength;
        internal UIntPtr MaxResponseLen;
        internal int Contactless;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Terminal
    {
        internal IntPtr Ctx;
        internal IntPtr Consent;
        internal IntPtr Pin;
        internal IntPtr CollationNumberB;
        internal IntPtr MatchFace;
        internal IntPtr Attest;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct FaceMatch
    {
        internal int Matched;
        internal ushort ScorePermille;
        internal ushort ThresholdPermille;
    }

    // The callbacks' shapes (mynacard.h); every pointer stays an IntPtr and is copied explicitly.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int TransmitFn(IntPtr ctx, IntPtr command, UIntPtr commandLen, IntPtr response, UIntPtr responseCap, IntPtr responseLen);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int ConsentFn(IntPtr ctx, IntPtr text);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int DigitsFn(IntPtr ctx, int retriesLeft, IntPtr digits, UIntPtr digitsCap, IntPtr digitsLen);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int MatchFaceFn(IntPtr ctx, IntPtr photo, UIntPtr photoLen, IntPtr result);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int AttestFn(IntPtr ctx, IntPtr message, UIntPtr messageLen, IntPtr signature, UIntPtr signatureCap, IntPtr signatureLen);

    internal static class Native
    {
        // The platform's name is resolved by the runtime: libmynacard_ffi.so, mynacard_ffi.dll.
        private const string Lib = "mynacard_ffi";

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_string_free(IntPtr s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_client_new(byte[] serviceUrl, byte[] terminalId, int kind, out ClientHandle client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_client_run(ClientHandle client, int flow, ref Transport transport, ref Terminal terminal, out OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_client_last_error(ClientHandle client);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_client_free(IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_outcome_kind(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_outcome_kind_name(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_outcome_registration_id(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint mynacard_outcome_apdu_count(OutcomeHandle outcome);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_outcome_message(OutcomeHandle outcome, byte[] locale);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_outcome_free(IntPtr outcome);

        // The `sim` feature: the reference service, the simulated card and the kiosk devices
        // that go with it. A real kiosk calls its reader, camera and key store here instead.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_sim_service_start(out ServiceHandle service);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr mynacard_sim_service_url(ServiceHandle service);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_sim_service_free(IntPtr service);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_sim_card_new(byte[] profile, out SimCardHandle card);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_sim_card_free(IntPtr card);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_sim_transmit(SimCardHandle card, byte[] command, UIntPtr commandLen, byte[] response, UIntPtr responseCap, out UIntPtr responseLen);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_sim_collation_number_b(SimCardHandle card, int retriesLeft, byte[] digits, UIntPtr digitsCap, out UIntPtr digitsLen);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_sim_match_face(SimCardHandle card, byte[] photo, UIntPtr photoLen, out FaceMatch result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status mynacard_sim_attestation_key_new(byte[] terminalId, out AttestationKeyHandle key);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int mynacard_sim_attest(AttestationKeyHandle key, byte[] message, UIntPtr messageLen, byte[] signature, UIntPtr signatureCap, out UIntPtr signatureLen);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void mynacard_sim_attestation_key_free(IntPtr key);

        /// <summary>Throws unless a call without a handle succeeded.</summary>
        internal static void Check(string call, Status status)
        {
            if (status != Status.Ok)
            {
                throw new MynacardException(call, status, null);
            }
        }
    }

    /// <summary>The kiosk's devices as the library's callbacks: the card reader, the consent
    /// screen, the camera (照合番号B and the live face) and the attestation key.</summary>
    internal sealed class KioskDevices
    {
        private readonly SimCardHandle card;
        private readonly AttestationKeyHandle key;

        // The delegates live in fields for as long as this object is reachable, and Run keeps
        // it reachable until the native call returns: the GC must not collect a delegate
        // whose function pointer the library may still call.
        private readonly TransmitFn transmit;
        private readonly ConsentFn consent;
        private readonly DigitsFn collationNumberB;
        private readonly MatchFaceFn matchFace;
        private readonly AttestFn attest;

        /// <summary>The first exception a callback caught: exceptions must not cross the C ABI,
        /// so the callback reports failure and the run rethrows this afterwards.</summary>
        private Exception failure;

        internal uint Transmitted { get; private set; }
        internal int Attested { get; private set; }

        internal KioskDevices(SimCardHandle card, AttestationKeyHandle key)
        {
            this.card = card;
            this.key = key;
            transmit = Transmit;
            consent = Consent;
            collationNumberB = CollationNumberB;
            matchFace = MatchFace;
            attest = Attest;
        }

        /// <summary>Runs one whole flow on <paramref name="client"/>; the outcome or an exception.</summary>
        internal OutcomeHandle Run(ClientHandle client, Flow flow)
        {
            failure = null;
            Transmitted = 0;
            var transport = new Transport
            {
                Ctx = IntPtr.Zero,
                Transmit = Marshal.GetFunctionPointerForDelegate(transmit),
                ExtendedLength = 1,
                MaxResponseLen = UIntPtr.Zero,
                Contactless = 0,
            };
            var terminal = new Terminal
            {
                Ctx = IntPtr.Zero,
                Consent = Marshal.GetFunctionPointerForDelegate(consent),
                Pin = IntPtr.Zero, // a face kiosk has no PIN pad
                CollationNumberB = Marshal.GetFunctionPointerForDelegate(collationNumberB),
                MatchFace = Marshal.GetFunctionPointerForDelegate(matchFace),
                Attest = Marshal.GetFunctionPointerForDelegate(attest),
            };
            OutcomeHandle outcome;
            Status status = Native.mynacard_client_run(client, (int)flow, ref transport, ref terminal, out outcome);
            GC.KeepAlive(this);
            if (failure != null)
            {
                outcome.Dispose();
                throw new InvalidOperationException($"a kiosk device failed during {flow}", failure);
            }
            client.Check("mynacard_client_run", status);
            return outcome;
        }

        private int Transmit(IntPtr ctx, IntPtr command, UIntPtr commandLen, IntPtr response, UIntPtr responseCap, IntPtr responseLen)
        {
            try
            {
                // As with SCardTransmit: managed buffers in, the response copied back out.
                var cmd = new byte[checked((int)commandLen.ToUInt32())];
                Marshal.Copy(command, cmd, 0, cmd.Length);
                var resp = new byte[checked((int)responseCap.ToUInt32())];
                UIntPtr got;
                int status = Native.mynacard_sim_transmit(card, cmd, commandLen, resp, responseCap, out got);
                if (status != (int)Status.Ok)
                {
                    return status; // CARD_REMOVED, BUFFER_TOO_SMALL or a reader failure, as it is
                }
                Marshal.Copy(resp, 0, response, checked((int)got.ToUInt32()));
                Marshal.WriteIntPtr(responseLen, (IntPtr)(long)got.ToUInt64());
                Transmitted++;
                return (int)Status.Ok;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return (int)Status.Transport;
            }
        }

        private int Consent(IntPtr ctx, IntPtr text)
        {
            try
            {
                // The kiosk's screen shows the whole text; the person taps "agree".
                string shown = Utf8.Decode(text);
                return string.IsNullOrEmpty(shown) ? 0 : 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
        }

        private int CollationNumberB(IntPtr ctx, int retriesLeft, IntPtr digits, UIntPtr digitsCap, IntPtr digitsLen)
        {
            var read = new byte[checked((int)digitsCap.ToUInt32())];
            try
            {
                // The camera's OCR of the card face writes into the kiosk's buffer.
                UIntPtr len;
                if (Native.mynacard_sim_collation_number_b(card, retriesLeft, read, digitsCap, out len) == 0)
                {
                    return 0;
                }
                Marshal.Copy(read, 0, digits, checked((int)len.ToUInt32()));
                Marshal.WriteIntPtr(digitsLen, (IntPtr)(long)len.ToUInt64());
                return 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
            finally
            {
                // 照合番号B opens the card-face records: the kiosk clears its own copy.
                Array.Clear(read, 0, read.Length);
            }
        }

        private int MatchFace(IntPtr ctx, IntPtr photo, UIntPtr photoLen, IntPtr result)
        {
            try
            {
                var image = new byte[checked((int)photoLen.ToUInt32())];
                Marshal.Copy(photo, image, 0, image.Length);
                FaceMatch match;
                if (Native.mynacard_sim_match_face(card, image, photoLen, out match) == 0)
                {
                    return 0;
                }
                Marshal.StructureToPtr(match, result, false);
                return 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
        }

        private int Attest(IntPtr ctx, IntPtr message, UIntPtr messageLen, IntPtr signature, UIntPtr signatureCap, IntPtr signatureLen)
        {
            try
            {
                var msg = new byte[checked((int)messageLen.ToUInt32())];
                Marshal.Copy(message, msg, 0, msg.Length);
                var sig = new byte[checked((int)signatureCap.ToUInt32())];
                UIntPtr len;
                if (Native.mynacard_sim_attest(key, msg, messageLen, sig, signatureCap, out len) == 0)
                {
                    return 0;
                }
                Marshal.Copy(sig, 0, signature, checked((int)len.ToUInt32()));
                Marshal.WriteIntPtr(signatureLen, (IntPtr)(long)len.ToUInt64());
                Attested++;
                return 1;
            }
            catch (Exception e)
            {
                failure = failure ?? e;
                return 0;
            }
        }
    }

    public static class Kiosk
    {
        private const string TerminalId = "kiosk-0001";

        public static int Main()
        {
            Console.OutputEncoding = new UTF8Encoding(false);
            try
            {
                return Run() ? 0 : 1;
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"kiosk: {e}");
                return 2;
            }
        }

        /// <summary>The two flows; true when they ended as a kiosk expects.</summary>
        private static bool Run()
        {
            ServiceHandle service;
            Native.Check("mynacard_sim_service_start", Native.mynacard_sim_service_start(out service));
            using (service)
            {
                SimCardHandle card;
                Native.Check("mynacard_sim_card_new", Native.mynacard_sim_card_new(Utf8.Encode("face-auth"), out card));
                using (card)
                {
                    AttestationKeyHandle key;
                    Native.Check("mynacard_sim_attestation_key_new",
                        Native.mynacard_sim_attestation_key_new(Utf8.Encode(TerminalId), out key));
                    using (key)
                    {
                        return RunFlows(Utf8.Decode(Native.mynacard_sim_service_url(service)), new KioskDevices(card, key));
                    }
                }
            }
        }

        /// <summary>The face registration, then the eligibility check, with one client.</summary>
        private static bool RunFlows(string url, KioskDevices devices)
        {
            ClientHandle client;
            Native.Check("mynacard_client_new",
                Native.mynacard_client_new(Utf8.Encode(url), Utf8.Encode(TerminalId), (int)TerminalKind.Kiosk, out client));
            using (client)
            {
                bool registered = Report("registration", devices, client, Flow.FaceRegistration, OutcomeKind.Registered);
                bool eligible = Report("eligibility", devices, client, Flow.FaceEligibility, OutcomeKind.Eligible);
                Console.WriteLine($"attestations: {devices.Attested}");
                return registered && eligible && devices.Attested == 2;
            }
        }

        /// <summary>Runs <paramref name="flow"/>, prints its outcome, and says whether it was
        /// <paramref name="expected"/>.</summary>
        private static bool Report(string label, KioskDevices devices, ClientHandle client, Flow flow, OutcomeKind expected)
        {
            using (OutcomeHandle outcome = devices.Run(client, flow))
            {
                string id = outcome.RegistrationId;
                Console.WriteLine(id == null ? $"{label}: {outcome.KindName}" : $"{label}: {outcome.KindName} {id}");
                Console.WriteLine($"{label} message (en): {outcome.Message("en")}");
                Console.WriteLine($"{label} message (ja): {outcome.Message("ja")}");
                // The library counts what it sent; the reader callback counts what it carried.
                if (outcome.ApduCount != devices.Transmitted)
                {
                    Console.Error.WriteLine($"{label}: the library counted {outcome.ApduCount} APDUs, the reader carried {devices.Transmitted}");
                    return false;
                }
                Console.WriteLine($"{label} apdus: {devices.Transmitted}");
                return outcome.Kind == expected && (expected != OutcomeKind.Registered || !string.IsNullOrEmpty(id));
            }
        }
    }
}
